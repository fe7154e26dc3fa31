"""SetCertificateVerification and CheckCertificateVerification over every domain of a site.

Only groups that own their policy are read and changed (certrotate_shared.sepm.groups says why);
every group is reported, so the watches cover the clients of inheriting groups too.

"disable" records each location's original value (before touching it, so a crash cannot lose
it; the first record of a saga wins, so a re-run after someone re-enabled keeps the true
original) and turns secure communications off where it is on. "restore" puts back the originals
the orchestrator sends, plus any this worker recorded besides (a disable that failed midway),
and reports a failure when there is nothing to restore or any location could not be restored.
Both look first and patch only what differs, so a re-run completes the rest.
"""

from __future__ import annotations

import logging

from certificates.domain.verification import (
    LocationValue,
    Mode,
    SettingMissingError,
    from_messages,
    group_results,
    patch_body,
    secure_communications,
    wanted_value,
)
from certificates.service_layer.store import CertificateStore, Original
from certrotate_shared.envelope import Event
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    CheckCertificateVerification,
    GroupVerification,
    LocationVerification,
    SetCertificateVerification,
)
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm import SepmApi, SepmError
from certrotate_shared.sepm.domains import site_groups

log = logging.getLogger(__name__)


async def perform_verification(
    command: SetCertificateVerification | CheckCertificateVerification,
    *,
    saga_id: str,
    sepm: SepmApi,
    store: CertificateStore,
) -> Event:
    """The job for either verification command, to its outcome event."""
    if isinstance(command, CheckCertificateVerification):
        return await check_verification(site=command.site, sepm=sepm)
    return await set_verification(
        site=command.site,
        mode=command.mode,
        saga_id=saga_id,
        sepm=sepm,
        store=store,
        originals=command.originals,
    )


def verification_failed(
    command: SetCertificateVerification | CheckCertificateVerification,
    reason: str,
    retryable: bool,
) -> Event:
    """The failure event of either verification command (SEPM unreachable, no account)."""
    if isinstance(command, CheckCertificateVerification):
        return CertificateVerificationCheckFailed(
            site=command.site.site, reason=reason, retryable=retryable
        )
    return _failed(command.site, command.mode, reason, retryable)


class NothingToRestoreError(ValueError):
    """A restore without any recorded original: reporting it done would be a lie."""


class RestoreIncompleteError(ValueError):
    """Some recorded locations could not be put back (deleted, or refused by SEPM)."""


async def set_verification(
    *,
    site: SiteTarget,
    mode: Mode,
    saga_id: str,
    sepm: SepmApi,
    store: CertificateStore,
    originals: list[GroupVerification] | None = None,
) -> Event:
    """Apply the mode to every owned location; CertificateVerificationSet or ...Failed."""
    try:
        if mode == "disable":
            await _disable(site, saga_id, sepm, store)
            values = [_value(o) for o in await store.originals(saga_id, site.site)]
        else:
            values = await _to_restore(originals, saga_id, site, store)
            await _restore(values, sepm)
        results, vanished = group_results(values, await site_groups(sepm))
    except SepmError as exc:
        return _failed(site, mode, str(exc), exc.retryable)
    except (SettingMissingError, NothingToRestoreError, RestoreIncompleteError) as exc:
        return _failed(site, mode, str(exc), False)
    if vanished:
        log.warning("site %s: groups deleted during the rotation: %s", site.site, vanished)
    return CertificateVerificationSet(site=site.site, mode=mode, groups=results)


async def check_verification(*, site: SiteTarget, sepm: SepmApi) -> Event:
    """Re-read every owned location: which ones verify the server certificate right now."""
    enabled: list[LocationVerification] = []
    checked = 0
    try:
        for group in [g for g in await site_groups(sepm) if g.owns_policy]:
            for location in await sepm.group_locations(group.id, domain_id=group.domain_id):
                value = await _read(sepm, group.id, group.full_path_name, location.id)
                checked += 1
                if value:
                    enabled.append(
                        LocationVerification(
                            group_id=group.id,
                            full_path_name=group.full_path_name,
                            location_id=location.id,
                            secure_communications=True,
                        )
                    )
    except SepmError as exc:
        return CertificateVerificationCheckFailed(
            site=site.site, reason=str(exc), retryable=exc.retryable
        )
    except SettingMissingError as exc:
        return CertificateVerificationCheckFailed(site=site.site, reason=str(exc), retryable=False)
    if checked == 0:
        return CertificateVerificationCheckFailed(
            site=site.site,
            reason="SEPM listed no location in any domain: nothing proves verification is off",
            retryable=False,
        )
    return CertificateVerificationChecked(
        site=site.site, enabled=enabled, locations_checked=checked
    )


async def _disable(site: SiteTarget, saga_id: str, sepm: SepmApi, store: CertificateStore) -> None:
    seen = 0
    for group in [g for g in await site_groups(sepm) if g.owns_policy]:
        for location in await sepm.group_locations(group.id, domain_id=group.domain_id):
            seen += 1
            current = await _read(sepm, group.id, group.full_path_name, location.id)
            await store.record_original(
                saga_id, site.site, Original(group.id, location.id, group.full_path_name, current)
            )
            if current != wanted_value("disable", current):
                await sepm.patch_location_settings(group.id, location.id, patch_body(False))
    if seen == 0:
        raise SettingMissingError(
            "SEPM listed no location in any domain: there is no setting to turn off"
        )


async def _to_restore(
    originals: list[GroupVerification] | None,
    saga_id: str,
    site: SiteTarget,
    store: CertificateStore,
) -> list[LocationValue]:
    """The orchestrator's originals, plus what this worker recorded for the saga besides.

    The orchestrator knows originals only from a disable that reported success; a disable that
    failed midway recorded (and turned off) some locations here, and those must come back too.
    Where both know a location, the orchestrator's value wins.
    """
    recorded = [_value(o) for o in await store.originals(saga_id, site.site)]
    sent = from_messages(originals or [])
    known = {(v.group_id, v.location_id) for v in sent}
    values = sent + [v for v in recorded if (v.group_id, v.location_id) not in known]
    if not values:
        raise NothingToRestoreError(
            f"nothing to restore on site {site.site}: no original secure_communications value "
            f"was recorded for saga {saga_id}; verification may still be off, check the site"
        )
    return values


async def _restore(values: list[LocationValue], sepm: SepmApi) -> None:
    """Put back every value that can be; transient trouble stops it (a re-run resumes)."""
    missed: list[str] = []
    for original in values:
        try:
            current = await _read(
                sepm, original.group_id, original.full_path_name, original.location_id
            )
            wanted = wanted_value("restore", original.value)
            if current != wanted:
                await sepm.patch_location_settings(
                    original.group_id, original.location_id, patch_body(wanted)
                )
        except SepmError as exc:
            if exc.retryable:
                raise
            missed.append(f"{original.full_path_name} location {original.location_id}: {exc}")
        except SettingMissingError as exc:
            missed.append(str(exc))
    if missed:
        raise RestoreIncompleteError(
            f"could not restore {len(missed)} of {len(values)} locations: " + "; ".join(missed)
        )


async def _read(sepm: SepmApi, group_id: str, path: str, location_id: str) -> bool:
    try:
        return secure_communications(await sepm.get_location_settings(group_id, location_id))
    except SettingMissingError as exc:
        raise SettingMissingError(f"group {path}, location {location_id}: {exc}") from None


def _value(original: Original) -> LocationValue:
    return LocationValue(
        original.group_id, original.location_id, original.full_path_name, original.value
    )


def _failed(site: SiteTarget, mode: Mode, reason: str, retryable: bool) -> Event:
    return CertificateVerificationFailed(
        site=site.site, mode=mode, reason=reason, retryable=retryable
    )
