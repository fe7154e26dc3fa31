"""`certrotate up --follow-twin URL` starts the services on the twin's clock (both modes share
the reading); a twin that cannot be followed is refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from certrotate.cli import main
from tests.integration.cli.conftest import LiveCertrotate

pytestmark = pytest.mark.integration


def test_distributed_mode_gets_the_twins_speed_and_time(
    live: LiveCertrotate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []

    def run(config: Any, **_: Any) -> int:
        started.append(config)
        return 0

    monkeypatch.setattr("certrotate.distributed.run", run)
    before = httpx.get(f"{live.twin_url}/twin/v1/clock").json()
    result = CliRunner().invoke(
        main, ["up", "--mode", "distributed", "--follow-twin", live.twin_url,
               "--data-dir", str(tmp_path)],
    )  # fmt: skip
    after = httpx.get(f"{live.twin_url}/twin/v1/clock").json()
    assert result.exit_code == 0, result.output
    [config] = started
    assert config.clock.speed == before["speed"] == 3600
    assert before["now_ms"] <= config.clock.sim_ms <= after["now_ms"]
    assert "following the twin's clock" in result.stderr


def test_a_twin_that_is_not_there_is_refused_before_anything_starts(
    tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []

    def run(config: Any, **_: Any) -> int:
        started.append(config)
        return 0

    monkeypatch.setattr("certrotate.distributed.run", run)
    for mode in ("embedded", "distributed"):
        result = CliRunner().invoke(
            main, ["up", "--mode", mode, "--follow-twin", f"http://127.0.0.1:{closed_port}",
                   "--data-dir", str(tmp_path)],
        )  # fmt: skip
        assert result.exit_code == 1
        assert "refusing to start: cannot read the twin's clock" in result.stderr
        assert "Traceback" not in result.output
    assert started == []


def test_import_twin_needs_the_accounts_password_and_names_a_missing_twin(
    live: LiveCertrotate, closed_port: int
) -> None:
    client = ["--api", live.api_url, "--token-file", str(live.admin_token_file)]
    missing = CliRunner().invoke(
        main, ["sites", "import-twin", f"http://127.0.0.1:{closed_port}", *client]
    )
    assert missing.exit_code == 1
    assert "cannot read the twin's topology" in missing.stderr
    # Off a terminal and without --scenario or --password-file: a usage error, nothing saved.
    no_password = CliRunner().invoke(main, ["sites", "import-twin", live.twin_url, *client])
    assert no_password.exit_code == 2
    assert "--password-file" in no_password.stderr
