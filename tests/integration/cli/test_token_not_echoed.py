"""A token that cannot go into an HTTP header (a token file with a second line, a stray control
character) must not be printed back: httpx's error for it quotes the whole header value."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from certrotate.api_client import ApiClient, ApiError
from certrotate.cli import main

pytestmark = pytest.mark.integration

SECRET = "crt_s3cret-token-value"  # a test token


@pytest.fixture
def listener() -> Iterator[str]:
    """A local port that accepts connections (what happens next does not matter)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.parametrize("token", [f"{SECRET}\nsecond line", f"{SECRET}\x00"])
def test_the_api_client_error_does_not_quote_the_token(listener, token):
    with ApiClient(listener, token, timeout=5) as api, pytest.raises(ApiError) as err:
        api.get("/v1/rotations")
    assert SECRET not in str(err.value)


def test_a_token_file_with_two_lines_is_refused_without_printing_it(listener, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{SECRET}\n# the admin token of the test stack\n")
    result = CliRunner().invoke(main, ["list", "--api", listener, "--token-file", str(token_file)])
    assert result.exit_code != 0
    assert SECRET not in result.output
    assert SECRET not in (result.stderr or "")
    assert "token" in result.stderr
