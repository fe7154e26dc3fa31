"""SetCertificateVerification over every group and location of a site.

"disable" records each location's original value (before touching it, so a crash cannot lose
it) and turns secure communications off where it is on; "restore" puts back exactly the
recorded values. Both look first and patch only what differs, so a re-run completes the rest.
"""

from __future__ import annotations

import logging

from certificates.domain.verification import (
    LocationValue,
    Mode,
    SettingMissingError,
    group_results,
    patch_body,
    secure_communications,
    wanted_value,
)
from certificates.service_layer.store import CertificateStore, Original
from certrotate_shared.envelope import Event
from certrotate_shared.messages.certificates import (
    CertificateVerificationFailed,
    CertificateVerificationSet,
)
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm import SepmApi, SepmError
from certrotate_shared.sepm.answers import text_field

log = logging.getLogger(__name__)
_GROUPS = "GET /groups"


async def set_verification(
    *, site: SiteTarget, mode: Mode, saga_id: str, sepm: SepmApi, store: CertificateStore
) -> Event:
    """Apply the mode to every location; CertificateVerificationSet or ...Failed."""
    try:
        if mode == "disable":
            await _disable(site, saga_id, sepm, store)
        originals = await store.originals(saga_id, site.site)
        if mode == "restore":
            await _restore(originals, sepm)
        serials = {
            text_field(g, "id", _GROUPS): text_field(g, "policySerialNumber", _GROUPS)
            async for g in sepm.iter_groups()
        }
    except SepmError as exc:
        return CertificateVerificationFailed(
            site=site.site, mode=mode, reason=str(exc), retryable=exc.retryable
        )
    except SettingMissingError as exc:
        return CertificateVerificationFailed(
            site=site.site, mode=mode, reason=str(exc), retryable=False
        )
    values = [
        LocationValue(o.group_id, o.location_id, o.full_path_name, o.value) for o in originals
    ]
    groups, vanished = group_results(values, serials)
    if vanished:
        log.warning("site %s: groups deleted during the rotation: %s", site.site, vanished)
    if mode == "restore" and not originals:
        log.warning("site %s saga %s: nothing was disabled, nothing to restore", site.site, saga_id)
    return CertificateVerificationSet(site=site.site, mode=mode, groups=groups)


async def _disable(site: SiteTarget, saga_id: str, sepm: SepmApi, store: CertificateStore) -> None:
    async for group in sepm.iter_groups():
        group_id = text_field(group, "id", _GROUPS)
        path = text_field(group, "fullPathName", _GROUPS)
        for location in await sepm.group_locations(group_id):
            location_id = location.id
            try:
                current = secure_communications(
                    await sepm.get_location_settings(group_id, location_id)
                )
            except SettingMissingError as exc:
                raise SettingMissingError(f"group {path}, location {location_id}: {exc}") from None
            await store.record_original(
                saga_id, site.site, Original(group_id, location_id, path, current)
            )
            if current != wanted_value("disable", current):
                await sepm.patch_location_settings(group_id, location_id, patch_body(False))


async def _restore(originals: list[Original], sepm: SepmApi) -> None:
    for original in originals:
        current = secure_communications(
            await sepm.get_location_settings(original.group_id, original.location_id)
        )
        wanted = wanted_value("restore", original.value)
        if current != wanted:
            await sepm.patch_location_settings(
                original.group_id, original.location_id, patch_body(wanted)
            )
