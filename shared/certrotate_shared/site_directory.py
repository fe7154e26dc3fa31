"""Where a site really is: the target the orchestrator published, never the one a message names.

A command names its site with a whole `SiteTarget` (API URL, host-operations endpoint, trust
set, servers). Workers send stored passwords and keystores to those places, so a forged command
on the bus could steer a stored account anywhere. The orchestrator, the only writer of the
inventory, therefore seals each site's target in the vault (`target/<site>`, bound to that
reference) with a revision that only grows; a worker resolves the site by its name from there.
The command keeps one say: its `revision`, the oldest publication it may be served from.
"""

from __future__ import annotations

import logging
from typing import Any

from certrotate_shared.messages.common import HostOpsTarget, SiteTarget
from certrotate_shared.retryable import TransientError
from certrotate_shared.vault import SecretNotFoundError, Vault

log = logging.getLogger(__name__)

TARGET_KIND = "site_target"


def sepm_ref(site: str) -> str:
    """Vault reference of a site's SEPM API account."""
    return f"sepm/{site}"


def hostops_ref(site: str) -> str:
    """Vault reference of a site's host-operations (WinRM) account."""
    return f"hostops/{site}"


def target_ref(site: str) -> str:
    """Vault reference of a site's published target."""
    return f"target/{site}"


class AuthoritativeSite(SiteTarget):
    """A site's target as the orchestrator published it (only `resolve` makes one)."""


class UnknownSiteTargetError(Exception):
    """No target is published for the site, or it lacks what the command asks for."""


class StaleSiteTargetError(TransientError):
    """The command was built from a newer publication than the vault holds yet."""


async def publish(vault: Vault, target: SiteTarget, *, revision: int) -> None:
    """Seal a site's target under `target/<site>` as publication `revision`."""
    entry = {"revision": revision, "target": target.model_dump(mode="json", exclude={"revision"})}
    await vault.put(target_ref(target.site), TARGET_KIND, entry, f"where {target.site} is reached")


async def published_revision(vault: Vault, site: str) -> int:
    """The revision of the site's published target (0: none yet)."""
    try:
        return int((await vault.get(target_ref(site)))["revision"])
    except SecretNotFoundError:
        return 0


async def withdraw(vault: Vault, site: str) -> None:
    """A removed site: commands naming it find nothing to act on. The revision stays, so a
    site registered again under the same name never goes back to an older number."""
    entry = {"revision": await published_revision(vault, site) + 1, "target": None}
    await vault.put(target_ref(site), TARGET_KIND, entry, f"{site} was removed")


async def resolve(requested: SiteTarget, vault: Vault) -> AuthoritativeSite:
    """The published target of the site the command names; the command's own fields are only
    compared (a difference is logged, never followed)."""
    if isinstance(requested, AuthoritativeSite):
        return requested
    site = await resolve_named(requested.site, vault, revision=requested.revision)
    _warn_if_steered(requested, site)
    return site


async def resolve_named(
    name: str, vault: Vault, *, revision: int | None = None
) -> AuthoritativeSite:
    """The published target of a site a worker knows by name only (from its own records)."""
    try:
        entry = await vault.get(target_ref(name))
    except SecretNotFoundError:
        raise UnknownSiteTargetError(
            f"site {name!r} has no target published by the orchestrator; save the site again "
            f"(PUT /v1/sites/{name}) so workers learn where it is"
        ) from None
    current = int(entry["revision"])
    if entry.get("target") is None:
        raise UnknownSiteTargetError(f"site {name!r} was removed from the inventory")
    if revision is not None and current < revision:
        raise StaleSiteTargetError(
            f"site {name!r}: the command was built from publication {revision} of "
            f"its target, the vault holds {current} so far"
        )
    published = SiteTarget.model_validate(entry["target"])
    host_ops = published.host_ops
    return AuthoritativeSite(
        **published.model_dump(exclude={"credential_ref", "host_ops", "revision"}),
        # References follow from the name alone: no message picks which account is used.
        credential_ref=sepm_ref(name),
        host_ops=HostOpsTarget(
            driver=host_ops.driver,
            endpoint=host_ops.endpoint,
            credential_ref=hostops_ref(name) if host_ops.credential_ref else None,
        ),
        revision=current,
    )


_COMPARED = ("version", "api_url", "credential_ref", "trusted_certificates_pem", "host_ops")
_warned: set[tuple[str, int, int | None, tuple[str, ...]]] = set()


def _warn_if_steered(requested: SiteTarget, site: AuthoritativeSite) -> None:
    differing = [f for f in _COMPARED if getattr(requested, f) != getattr(site, f)]
    if _servers(requested) != _servers(site):
        differing.append("servers")
    key = (site.site, site.revision or 0, requested.revision, tuple(differing))
    if not differing or key in _warned:
        return
    if len(_warned) > 10_000:  # a bound, not a cache: the set only tames repeated warnings
        _warned.clear()
    _warned.add(key)
    log.warning(
        "site %s: the command's %s differ from the published target (revision %s, command "
        "revision %s); acting on the published target",
        site.site,
        ", ".join(differing),
        site.revision,
        requested.revision,
    )


def _servers(site: SiteTarget) -> list[dict[str, Any]]:
    return sorted((s.model_dump() for s in site.servers), key=lambda s: str(s["name"]))
