"""What certificate a management server's TLS ports serve, observed rather than assumed:
a certificate change is done only when every registered TLS port presents the new one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from certrotate_shared.messages.common import ServerTarget

Probe = Callable[[ServerTarget], Awaitable[dict[str, str]]]


def no_tls_ports(server: ServerTarget) -> str | None:
    """Why nothing about this server can be verified (it has no TLS ports), or None."""
    if server.tls_ports():
        return None
    # Nothing to probe would read as "every port serves it": never report that as done.
    return (
        f"server {server.name} is registered without TLS ports, so certrotate cannot prove "
        "which certificate it serves; register its ports (at least 8443, 443 and 8446, and "
        "8445 where the reporting site is used)"
    )


@dataclass
class Verifier:
    """Observes what a server's TLS ports present, retrying while its services come up."""

    probe: Probe
    timeout_s: float = 60.0
    interval_s: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = field(default=time.monotonic)

    async def observe(self, server: ServerTarget) -> tuple[dict[str, str], str]:
        """(port → fingerprint, "") or ({}, why not) in one try."""
        try:
            return await self.probe(server), ""
        except Exception as exc:  # a closed port while a service restarts is expected
            return {}, str(exc) or type(exc).__name__

    async def serves(self, server: ServerTarget, fingerprint: str) -> bool:
        """Does every TLS port serve this fingerprint right now?"""
        served, _ = await self.observe(server)
        return mismatches(server, served, fingerprint) == []

    async def await_served(
        self, server: ServerTarget, fingerprint: str
    ) -> tuple[dict[str, str] | None, str]:
        """Probe until every TLS port serves `fingerprint`: (ports verified, "") or (None, why)."""
        deadline = self.monotonic() + self.timeout_s
        while True:
            served, error = await self.observe(server)
            if not error:
                wrong = mismatches(server, served, fingerprint)
                if not wrong:
                    return served, ""
                error = "; ".join(wrong)
            if self.monotonic() >= deadline:
                return None, (
                    f"after {self.timeout_s:g} s {server.name} does not serve certificate "
                    f"{fingerprint[:16]}… on every TLS port: {error}"
                )
            await self.sleep(self.interval_s)


def mismatches(server: ServerTarget, served: dict[str, str], fingerprint: str) -> list[str]:
    """What differs between the wanted fingerprint and what each TLS port served."""
    wanted = server.tls_ports() or served
    problems = []
    for port in wanted:
        seen = served.get(port)
        if seen is None:
            problems.append(f"port {port} not observed")
        elif seen != fingerprint:
            problems.append(f"port {port} serves {seen[:16]}…")
    return problems
