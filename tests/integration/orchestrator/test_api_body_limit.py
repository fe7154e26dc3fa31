"""The body limit holds on the wire: a chunked body (no Content-Length) is cut off at the
limit, before anything parses it, by a real HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from certrotate_shared.clock import ManualClock
from tests.integration.orchestrator.harness import orchestrator
from tests.integration.orchestrator.support import ADMIN, INTERNAL

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


async def chunks(total: int, size: int = 64 * 1024, *, json: bool = True) -> AsyncIterator[bytes]:
    yield b'{"name": "' if json else b"{"
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'", "role": "admin"}' if json else b""


@pytest.fixture
async def served(tmp_path, master_key) -> AsyncIterator[str]:
    settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/orchestrator.db",
        "vault_url": f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        "transport": "local",
        "local_log_path": str(tmp_path / "bus.db"),
        "master_key": master_key,
        "admin_token": ADMIN,
        "internal_token": INTERNAL,
        "rehearsal": True,
        "http_port": 0,
    }
    runtime = orchestrator(settings, clock=ManualClock())
    await runtime.start(serve_http=True)
    try:
        assert runtime.http_url is not None  # serve_http=True binds a port
        yield runtime.http_url
    finally:
        await runtime.stop()


async def test_a_5_mib_chunked_post_without_a_token_is_refused_not_parsed(served):
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        response = await client.post(
            "/v1/tokens",
            content=chunks(5 * MIB, json=False),
            headers={"content-type": "application/json"},
        )
    assert "content-length" not in response.request.headers  # it really went chunked
    assert response.status_code in (401, 413), response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_chunked_body_over_the_limit_is_413_even_with_a_valid_token(served):
    async with httpx.AsyncClient(
        base_url=served, timeout=60, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as client:
        too_big = await client.post(
            "/v1/tokens", content=chunks(3 * MIB), headers={"content-type": "application/json"}
        )
        assert too_big.status_code == 413, too_big.text
        assert "limit" in too_big.json()["detail"]
        small = await client.post("/v1/tokens", json={"name": "ok", "role": "viewer"})
        assert small.status_code == 201
