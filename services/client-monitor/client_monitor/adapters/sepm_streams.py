"""The SEPM connector's sockets on asyncio's own streams, for the ~650 KB pages of a watch.

httpx reaches the network through httpcore, which by default goes through anyio: each read of
a TLS connection is one TLS record (16 KB) pulled through a memory BIO inside a cancel scope,
so a 1,000-computer page took ~40 trips through anyio, h11 and httpcore, and the HTTP client
was the largest part of a 1M-client scan's CPU (2.9 of ~6.5 s). asyncio's SSL transport
decrypts whatever the socket holds in one go and a read here takes up to httpcore's 64 KB from
its buffer. Everything above the socket (HTTP/1.1, pooling, keep-alive, the connector's errors
and retries) is httpx's as before: this is an httpcore network backend, the seam httpcore
offers for it, and it raises httpcore's own exceptions with the cause kept (the connector tells
an untrusted certificate from a refused connection by it).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

READ_BUFFER = 1 << 20  # bytes asyncio may hold before it stops reading the socket
CLOSE_WAIT_S = 1.0  # how long closing waits for the TLS goodbye before it drops the socket


class _Mapped:
    """asyncio.timeout, with what fails turned into httpcore's exception (cause kept). A plain
    class rather than a generator context manager: it wraps every 64 KB read of a page."""

    __slots__ = ("_error", "_timeout", "_timer")

    def __init__(
        self, timeout: float | None, on_timeout: type[Exception], on_error: type[Exception]
    ) -> None:
        self._timer = asyncio.timeout(timeout)
        self._timeout = on_timeout
        self._error = on_error

    async def __aenter__(self) -> None:
        await self._timer.__aenter__()

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            await self._timer.__aexit__(kind, exc, tb)
        except TimeoutError as timed_out:
            raise self._timeout(str(timed_out) or "timed out") from timed_out
        if isinstance(exc, OSError | EOFError):  # ssl.SSLError is an OSError
            raise self._error(str(exc) or type(exc).__name__) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: a StreamReader fed by asyncio's transport, written through its writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        async with _Mapped(timeout, httpcore.ReadTimeout, httpcore.ReadError):
            return await self._reader.read(max_bytes)  # b"" at the end of the stream

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        async with _Mapped(timeout, httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await self._writer.wait_closed()
        except (TimeoutError, OSError):
            self._writer.transport.abort()  # a peer that never answers the TLS close

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            self._writer.transport.abort()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # Asked of an idle kept-alive connection before it is reused: anything arriving
            # on it (the server closing it, above all) means it must not be.
            return (
                self._reader.at_eof()
                or self._reader.exception() is not None
                or self._writer.transport.is_closing()
            )
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens connections for httpcore's pool with asyncio.open_connection."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if socket_options:
            raise ValueError("socket options are not supported by this network backend")
        local = (local_address, 0) if local_address else None
        async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_connection(
                host, port, limit=READ_BUFFER, local_addr=local
            )
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if socket_options:
            raise ValueError("socket options are not supported by this network backend")
        async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_unix_connection(path, limit=READ_BUFFER)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def asyncio_transport(verify: ssl.SSLContext | bool) -> httpx.AsyncBaseTransport | None:
    """httpx's own transport (its pool, limits and keep-alive as they are) over AsyncioBackend;
    None (httpx's default, as before) where the environment names a proxy for the scheme: httpx
    routes through HTTP(S)_PROXY only when it builds its transports itself.

    httpx takes no network backend, so the one its pool was built with is replaced; a test
    checks that connections do go through AsyncioBackend, in case httpx moves it.
    """
    proxies = urllib.request.getproxies()
    if "all" in proxies or ("https" if verify is not False else "http") in proxies:
        return None
    transport = httpx.AsyncHTTPTransport(verify=verify)
    pool = transport._pool  # httpx exposes no network backend option
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx's connection pool no longer takes a network backend")
    pool._network_backend = AsyncioBackend()
    return transport
