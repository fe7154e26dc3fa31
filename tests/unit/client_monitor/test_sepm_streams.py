"""Where the client-monitor's own sockets are used, and where httpx keeps its own."""

from __future__ import annotations

import ssl

import httpx
import pytest

from client_monitor.adapters.sepm_streams import AsyncioBackend, asyncio_transport

pytestmark = pytest.mark.unit
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                   "all_proxy")  # fmt: skip


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_a_proxy_the_pool_connects_through_asyncio_streams() -> None:
    transport = asyncio_transport(ssl.create_default_context())
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert isinstance(transport._pool._network_backend, AsyncioBackend)


@pytest.mark.parametrize(
    ("variable", "verify", "kept"),
    [
        ("HTTPS_PROXY", ssl.create_default_context(), True),
        ("ALL_PROXY", ssl.create_default_context(), True),
        ("HTTP_PROXY", False, True),
        ("HTTP_PROXY", ssl.create_default_context(), False),  # not the scheme SEPM is on
    ],
)
def test_a_proxy_named_in_the_environment_is_left_to_httpx(
    monkeypatch: pytest.MonkeyPatch, variable: str, verify: ssl.SSLContext | bool, kept: bool
) -> None:
    monkeypatch.setenv(variable, "http://proxy.example:3128")
    transport = asyncio_transport(verify)
    assert (transport is None) is kept
