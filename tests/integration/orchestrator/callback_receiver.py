"""A real HTTP receiver of callbacks for tests: it listens on a loopback port, verifies each
callback with the `standardwebhooks` library (as a subscriber would) and keeps what it got.
It can be stopped and started again on the same port (an outage), or answer with a chosen
status, a redirect or a long body."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    payload: dict[str, Any]


@dataclass
class Receiver:
    secret: str = ""
    status: int = 204
    body: bytes = b""
    location: str | None = None
    received: list[Received] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # webhook-ids, every attempt
    forged: int = 0
    port: int = 0
    # Serve https with this context (and name the host, which the certificate must cover).
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    _server: asyncio.Server | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}/itsm/hook"

    async def start(self) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.attempts.append(headers.get("webhook-id", ""))
            status = self.status
            try:
                Webhook(self.secret).verify(body, headers, json_parse=False)
                if 200 <= status < 300:
                    self.received.append(Received(headers["webhook-id"], json.loads(body)))
            except WebhookVerificationError:
                self.forged += 1
                status = 401
            extra = f"Location: {self.location}\r\n" if self.location else ""
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(self.body)}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
                + self.body
            )
            await writer.drain()
            self.arrived.set()
        writer.close()

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        async def enough() -> None:
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.received
