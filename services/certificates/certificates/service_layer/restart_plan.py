"""Which of SEPM's services a certificate change restarts, and restarting them in order.

SEPM 14.0 and later also run semapisrv; which version a server runs is asked of SEPM itself,
since the version registered in the inventory is a person's note and may be stale.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from certrotate_shared.hostops import HostOperationError, HostOperations, services_to_restart
from certrotate_shared.messages.common import ServerTarget, SiteTarget
from certrotate_shared.sepm import SepmApi, SepmError
from certrotate_shared.sepm.version import parse_version, reported_version

# The logger these warnings have always had, so that filters on it keep working.
log = logging.getLogger("certificates.service_layer.server_certificate")

# GET /version of the site's SEPM (no login needed); raises SepmError.
VersionReader = Callable[[], Awaitable[dict[str, Any]]]


def sepm_version_reader(
    connect: Callable[[SiteTarget], Awaitable[SepmApi]], site: SiteTarget
) -> VersionReader:
    """Asks the site's SEPM which version it runs, on a connection of its own."""

    async def read() -> dict[str, Any]:
        sepm = await connect(site)
        try:
            return await sepm.version()
        finally:
            await sepm.close()

    return read


class RestartPlanError(Exception):
    """Which services to restart cannot be told: SEPM unreachable or versions unreadable."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


async def services_for(
    server: ServerTarget, read_version: VersionReader, *, rollback: bool = False
) -> list[str]:
    """The services to restart, by the version SEPM reports (semapisrv from 14.0 on).

    The registered version is a person's note and may be stale ("v14.3" once skipped
    semapisrv); it is used only when SEPM's answer is unreadable, or on a rollback, which must
    not wait for a SEPM that the failed update may have taken down.
    """
    registered = parse_version(server.version)
    try:
        reported, text = reported_version(await read_version())
        trouble, retryable = f"SEPM reports no readable version ({text or 'none'})", False
    except SepmError as exc:
        reported, text = None, ""
        trouble, retryable = f"cannot read SEPM's version: {exc}", exc.retryable
    if reported is not None:
        if registered is None or (registered.major, registered.minor) != (
            reported.major,
            reported.minor,
        ):
            log.warning(
                "server %s is registered as version %r but SEPM reports %s: restarting the "
                "services of %s; update the inventory",
                server.name,
                server.version,
                text,
                reported,
            )
        return services_to_restart(str(reported))
    if registered is not None and (rollback or not retryable):
        log.warning(
            "server %s: %s; restarting the services of the registered version %r",
            server.name,
            trouble,
            server.version,
        )
        return services_to_restart(str(registered))
    if registered is None:
        trouble += f", and the registered version {server.version!r} is not one either"
    raise RestartPlanError(f"{server.name}: {trouble}", retryable=retryable)


async def restart_all(
    hostops: HostOperations, server: ServerTarget, key: str, services: list[str]
) -> tuple[str, HostOperationError] | None:
    """Restart `services` in order; the first that fails and why, or None."""
    for service in services:
        try:
            await hostops.restart_service(server, service, key=f"{key}:restart:{service}")
        except HostOperationError as exc:
            return service, exc
    return None
