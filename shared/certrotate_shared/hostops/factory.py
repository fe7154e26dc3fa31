"""Choosing a site's host-operations driver from its inventory entry (`site.host_ops.driver`).

Workers open drivers with `open_host_operations`, which takes the site from what the
orchestrator published (certrotate_shared.site_directory), never from the command.
"""

from __future__ import annotations

from collections.abc import Collection

from certrotate_shared import site_directory
from certrotate_shared.hostops.base import HostOperationError, HostOperations
from certrotate_shared.hostops.manual import ManualHostOperations
from certrotate_shared.hostops.measured import measured
from certrotate_shared.hostops.twin import TwinHostOperations
from certrotate_shared.hostops.winrm import WinRMHostOperations
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.vault import Vault


async def open_host_operations(
    site: SiteTarget,
    vault: Vault,
    *,
    http_timeout: float = 30.0,
    confirmed_tasks: Collection[str] = (),
) -> HostOperations:
    """The driver of the site a command names, as the orchestrator published it: the endpoint
    and the account the stored Windows password goes to are the inventory's, not the
    command's."""
    try:
        published = await site_directory.resolve(site, vault)
    except site_directory.StaleSiteTargetError as exc:
        raise HostOperationError(str(exc), retryable=True, code="SITE_TARGET_STALE") from None
    except site_directory.UnknownSiteTargetError as exc:
        raise HostOperationError(str(exc), code="SITE_UNKNOWN") from None
    return host_operations_for(
        published, vault, http_timeout=http_timeout, confirmed_tasks=confirmed_tasks
    )


def host_operations_for(
    site: SiteTarget,
    vault: Vault | None,
    *,
    http_timeout: float = 30.0,
    confirmed_tasks: Collection[str] = (),
) -> HostOperations:
    """The driver the inventory names for this site; the caller closes it when done.

    `site` must already be the published one (workers go through `open_host_operations`).

    `confirmed_tasks` matters to the manual driver and to the WinRM driver's console steps:
    the operator-task ids a person has confirmed, so the operations they cover return instead
    of raising ManualTaskPending.
    """
    return measured(
        _driver(site, vault, http_timeout=http_timeout, confirmed_tasks=confirmed_tasks),
        site.host_ops.driver,
    )


def _driver(
    site: SiteTarget, vault: Vault | None, *, http_timeout: float, confirmed_tasks: Collection[str]
) -> HostOperations:
    driver = site.host_ops.driver
    if driver == "twin":
        if not site.host_ops.endpoint:
            raise HostOperationError(
                f"site {site.site!r} uses the twin driver but its host_ops.endpoint is empty",
                code="MISCONFIGURED",
            )
        return TwinHostOperations(site.host_ops.endpoint, timeout=http_timeout)
    if driver == "winrm":
        # The certificate swap and its rollback are a person's console task (see winrm.py's
        # CONSOLE_REQUIRED); backups, restarts and partners go over WinRM.
        console = ManualHostOperations(site, confirmed_tasks=confirmed_tasks)
        return WinRMHostOperations(site, vault, timeout=http_timeout, console=console)
    if driver == "manual":
        return ManualHostOperations(site, confirmed_tasks=confirmed_tasks)
    raise HostOperationError(
        f"site {site.site!r}: unknown host-operations driver {driver!r}", code="MISCONFIGURED"
    )
