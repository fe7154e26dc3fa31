"""What a management server actually serves: the certificate seen in a real TLS handshake.

An observation, not a trust decision: the handshake verifies nothing, so it reports whatever
certificate is presented (old, new, self-signed). Used to verify an install and a rollback.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl

from certrotate_shared.messages.common import ServerTarget


class TlsProbeError(Exception):
    """A port could not be observed (refused, timed out, not TLS); `failures` maps port → why."""

    def __init__(self, message: str, *, failures: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or {}


def _observer_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def served_fingerprint(host: str, port: int, *, timeout: float = 5.0) -> str:
    """sha256 (lowercase hex) of the DER certificate host:port presents in a TLS handshake."""
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(
                host, port, ssl=_observer_context(), server_hostname=host
            )
    except ConnectionRefusedError as exc:
        raise TlsProbeError(f"{where} refused the connection (is the service running?)") from exc
    except TimeoutError as exc:
        raise TlsProbeError(
            f"{where} did not complete a TLS handshake within {timeout:g} s"
        ) from exc
    except ssl.SSLError as exc:
        raise TlsProbeError(f"{where} did not complete a TLS handshake: {exc.reason}") from exc
    except OSError as exc:
        raise TlsProbeError(f"{where} could not be reached: {exc.strerror or exc}") from exc
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout)
        except (OSError, TimeoutError, ssl.SSLError):
            pass  # the certificate is already in hand; a rough close changes nothing
    if not der:
        raise TlsProbeError(f"{where} presented no certificate")
    return hashlib.sha256(der).hexdigest()


async def served_fingerprints(server: ServerTarget, *, timeout: float = 5.0) -> dict[str, str]:
    """SEPM port name → served fingerprint, for every TLS port; raises if any port fails."""
    ports = server.tls_ports()
    if not ports:
        raise TlsProbeError(f"{server.name} lists no TLS ports to observe")
    names = list(ports)
    results = await asyncio.gather(
        *(served_fingerprint(server.address, ports[name], timeout=timeout) for name in names),
        return_exceptions=True,
    )
    served: dict[str, str] = {}
    failures: dict[str, str] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, TlsProbeError):
            failures[name] = str(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            served[name] = result
    if failures:
        detail = "; ".join(f"port {name}: {why}" for name, why in failures.items())
        raise TlsProbeError(
            f"could not observe the certificate of {server.name} on every TLS port: {detail}",
            failures=failures,
        )
    return served
