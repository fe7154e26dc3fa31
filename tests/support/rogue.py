"""An attacker's listener: a real HTTP(S) server on loopback that records every request it gets
and relays it to the real upstream (a man in the middle, so a victim notices nothing).

Tests point a forged command at it and assert that it heard nothing: no password, no bearer
token, no keystore ever reaches a place the inventory does not name.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.pki import TestCA

_HOP_BY_HOP = {b"content-length", b"transfer-encoding", b"connection", b"content-encoding"}


@dataclass
class Heard:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Rogue:
    """`await Rogue.start(upstream, ...)`; `.url` is its origin, `.heard` what reached it."""

    def __init__(self, upstream: str | None, upstream_ca_pem: str | None) -> None:
        verify: Any = (
            ssl.create_default_context(cadata=upstream_ca_pem) if upstream_ca_pem else True
        )
        # Without an upstream it only listens, and asks every caller to authenticate.
        self._upstream = (
            httpx.AsyncClient(base_url=upstream, verify=verify, timeout=30) if upstream else None
        )
        self.heard: list[Heard] = []
        self.url = ""
        self.ca = TestCA.root("Attacker Root CA", slot=7)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        upstream: str | None,
        *,
        tls_dir: Path | None = None,
        upstream_ca_pem: str | None = None,
    ) -> Rogue:
        """Listen on a free loopback port; with `tls_dir`, over TLS under the attacker's CA."""
        rogue = cls(upstream, upstream_ca_pem)
        options: dict[str, Any] = {}
        if tls_dir is not None:
            leaf = rogue.ca.issue(["127.0.0.1", "localhost"], common_name="127.0.0.1")
            (tls_dir / "rogue.crt").write_bytes(leaf.pem_bundle())
            (tls_dir / "rogue.key").write_bytes(leaf.key_pem())
            options = {
                "ssl_certfile": str(tls_dir / "rogue.crt"),
                "ssl_keyfile": str(tls_dir / "rogue.key"),
            }
        config = uvicorn.Config(
            rogue._app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            interface="asgi3",
            log_level="warning",
            **options,
        )
        rogue._server = uvicorn.Server(config)
        rogue._task = asyncio.create_task(rogue._server.serve())
        while not rogue._server.started:
            if rogue._task.done():
                rogue._task.result()
            await asyncio.sleep(0.01)
        port = rogue._server.servers[0].sockets[0].getsockname()[1]
        rogue.url = f"{'https' if tls_dir else 'http'}://127.0.0.1:{port}"
        return rogue

    @property
    def ca_pem(self) -> str:
        return self.ca.pem.decode()

    def steer(self, url: str) -> str:
        """The same URL with the rogue's origin (path and query kept)."""
        parts = httpx.URL(url)
        return str(httpx.URL(self.url).copy_with(path=parts.path, query=parts.query or None))

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._upstream is not None:
            await self._upstream.aclose()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.heard.append(Heard(scope["method"], scope["path"], headers, body))
        if self._upstream is None:
            challenge = [(b"www-authenticate", b"Negotiate"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 401, "headers": challenge})
            await send({"type": "http.response.body", "body": b""})
            return
        target = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        relayed = await self._upstream.request(
            scope["method"],
            target,
            content=body,
            headers={k: v for k, v in headers.items() if k not in ("host", "content-length")},
        )
        await send(
            {
                "type": "http.response.start",
                "status": relayed.status_code,
                "headers": [(k, v) for k, v in relayed.headers.raw if k.lower() not in _HOP_BY_HOP]
                + [(b"content-length", str(len(relayed.content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": relayed.content})
