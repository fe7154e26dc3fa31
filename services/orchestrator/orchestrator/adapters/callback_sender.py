"""One signed POST to a subscriber, guarded against server-side request forgery.

The host name is resolved here and every address checked; the request then goes to the checked
address (the name kept for Host and TLS SNI), so a second DNS answer cannot redirect it inside.
Redirects are never followed and only a short prefix of the answer is read."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from orchestrator.domain.subscriptions import AddressRefusedError, check_url, refused_because

PREFIX_BYTES = 512

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    status_code: int | None
    error: str | None
    response_prefix: str


async def resolve_checked(
    url: str, *, allowed: Sequence[Network], allow_http: bool
) -> tuple[str, list[str]]:
    """(host, addresses) of a URL that may be called; AddressRefusedError otherwise."""
    _, host, port = check_url(url, allow_http=allow_http)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise AddressRefusedError(f"{host} cannot be resolved ({exc.strerror or exc})") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise AddressRefusedError(f"{host} resolves to no address")
    for address in addresses:
        reason = refused_because(address, allowed)
        if reason is not None:
            raise AddressRefusedError(
                f"{host} resolves to {address}, {reason}; an admin may allow its network "
                "(CERTROTATE_ORCHESTRATOR_CALLBACK_ALLOWED_NETWORKS)"
            )
    return host, addresses


def sign(secret: str, event_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers; the timestamp is wall-clock time, as receivers check it."""
    now = datetime.now(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
    }


async def send(
    url: str,
    *,
    secret: str,
    event_id: str,
    body: str,
    allowed: Sequence[Network],
    allow_http: bool,
    timeout: float,
    trust: ssl.SSLContext | None = None,
) -> SendResult:
    try:
        host, addresses = await resolve_checked(url, allowed=allowed, allow_http=allow_http)
    except AddressRefusedError as exc:
        return SendResult(False, None, f"refused: {exc}", "")
    parts = urlsplit(url)
    ip = addresses[0]
    pinned = f"[{ip}]" if ":" in ip else ip
    netloc = f"{pinned}:{parts.port}" if parts.port else pinned
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = {
        **sign(secret, event_id, body),
        "content-type": "application/json",
        "user-agent": "certrotate-callbacks/1",
        "host": parts.netloc,
    }
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=timeout, trust_env=False, verify=trust or True
    ) as http:
        request = http.build_request(
            "POST", target, content=body.encode(), headers=headers,
            extensions={"sni_hostname": host},
        )  # fmt: skip
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:500], "")
        try:
            prefix = await _prefix(response)
        finally:
            await response.aclose()
    if 300 <= response.status_code < 400:
        return SendResult(False, response.status_code, "redirects are not followed", prefix)
    ok = 200 <= response.status_code < 300
    return SendResult(ok, response.status_code, None if ok else "not a 2xx answer", prefix)


@functools.lru_cache(maxsize=4)
def trust_store(ca_file: str) -> ssl.SSLContext:
    """The system's CAs, plus those of `ca_file` when given; host names are always checked
    (against the URL's name, sent as SNI, although the connection goes to the checked address)."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


async def _prefix(response: httpx.Response) -> str:
    read = b""
    try:
        async for chunk in response.aiter_raw():
            read += chunk
            if len(read) >= PREFIX_BYTES:
                break
    except httpx.HTTPError:
        pass
    return read[:PREFIX_BYTES].decode("utf-8", "replace")
