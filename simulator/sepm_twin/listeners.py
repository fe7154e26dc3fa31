"""Real sockets: each management server port, TLS with the certificate its service loaded.

Each listener is a small uvicorn server in the twin's event loop. A service restart closes
and re-creates its listeners, which is when a newly installed certificate starts being served
and why a stopped service refuses connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from sepm_twin.certificates import KeyPair


class _EmbeddedServer(uvicorn.Server):
    # Many servers share one process; signal handling belongs to whoever runs the twin.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PortListener:
    def __init__(self, *, app: Any, host: str, port: int = 0, workdir: Path, label: str) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._workdir = workdir
        self._label = label
        self._generation = 0
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self, pair: KeyPair | None) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listener says so, and without it every small response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        tls: dict[str, Any] = {}
        if pair is not None:
            tls = self._write_pair(pair)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
            **tls,
        )
        server = _EmbeddedServer(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self._label}: listener stopped while starting")
            await asyncio.sleep(0.005)
        self._server = server

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server, self._task = None, None
        if server is None or task is None:
            return
        server.should_exit = True
        await task

    def _write_pair(self, pair: KeyPair) -> dict[str, str]:
        self._generation += 1
        stem = self._workdir / f"{self._label}-{self._generation}"
        cert, key = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert.write_bytes(pair.certificate_pem)
        key.touch(mode=0o600)
        key.write_bytes(pair.key_pem)
        return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


async def trivial_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What the console (8443) and client (443, 8014) ports answer: SEPM's 'OK'."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"OK"})


def with_server_name(app: Any, server: str) -> Any:
    """Mark requests with the server they reached, so faults can target one server."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await app({**scope, "twin_server": server}, receive, send)

    return wrapped
