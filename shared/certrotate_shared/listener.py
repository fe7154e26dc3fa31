"""A service's HTTP listener: uvicorn inside the service's own event loop, plain, TLS or mTLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from certrotate_shared.settings import ServiceSettings


def tls_listener_options(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's TLS options for this service's listener: none (plain HTTP), TLS, or mTLS."""
    if not settings.http_tls_cert_file:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": settings.http_tls_cert_file,
        "ssl_keyfile": settings.http_tls_key_file,
    }
    if settings.http_tls_client_ca_file:
        options |= {
            "ssl_ca_certs": settings.http_tls_client_ca_file,
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    return options


class _QuietServer(uvicorn.Server):
    """Leaves signal handling to the process that embeds the API."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: FastAPI, settings: ServiceSettings) -> uvicorn.Server:
    """The listener for `app` on the service's host and port (not yet serving)."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        **tls_listener_options(settings),
    )
    return _QuietServer(config)


async def listening_url(
    server: uvicorn.Server, serving: asyncio.Task[Any], service: str, settings: ServiceSettings
) -> str:
    """Wait until `server` (run by the task `serving`) listens; the URL it listens on."""
    while not server.started:
        if serving.done():
            raise RuntimeError(f"{service} HTTP API could not start")
        await asyncio.sleep(0.02)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    scheme = "https" if settings.http_tls_cert_file else "http"
    return f"{scheme}://{host}:{port}"
