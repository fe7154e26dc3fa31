"""SetCertificateVerification over every group and location, against a fake SEPM."""

from __future__ import annotations

import pytest

from certificates.service_layer.verification import set_verification
from certrotate_shared.messages.certificates import (
    CertificateVerificationFailed,
    CertificateVerificationSet,
)
from certrotate_shared.sepm import SepmMalformedAnswerError
from tests.unit.certificates.fakes import FakeSepm, FakeStore, site

pytestmark = pytest.mark.unit

GROUPS = {
    "g-default": {"loc-default": True, "loc-remote": True},
    "g-laptops": {"loc-default": True},
    "g-lab": {"loc-default": False},  # already off before the rotation
}


async def run(mode: str, sepm: FakeSepm, store: FakeStore, saga: str = "saga-1"):
    return await set_verification(site=site(), mode=mode, saga_id=saga, sepm=sepm, store=store)


async def test_disable_turns_off_every_location_and_reports_originals_and_new_serials() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    before = dict(sepm.serials)
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationSet)
    assert all(v is False for locs in sepm.settings.values() for v in locs.values())
    by_id = {g.group_id: g for g in event.groups}
    assert by_id["g-default"].original_values == {"loc-default": True, "loc-remote": True}
    assert by_id["g-lab"].original_values == {"loc-default": False}
    # Serials changed where we patched, and each group reports the serial it has now.
    assert by_id["g-default"].target_serial != before["g-default"]
    assert by_id["g-lab"].target_serial == before["g-lab"]
    assert {g.target_serial for g in event.groups} == {sepm.serials[g] for g in GROUPS}
    # A location already off is not patched.
    assert ("g-lab", "loc-default", False) not in sepm.patches


async def test_restore_puts_back_exactly_the_recorded_values() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    await run("disable", sepm, store)
    serials_off = dict(sepm.serials)
    event = await run("restore", sepm, store)
    assert isinstance(event, CertificateVerificationSet)
    assert sepm.settings == GROUPS  # g-lab stays off: it was off before
    by_id = {g.group_id: g for g in event.groups}
    assert by_id["g-default"].target_serial != serials_off["g-default"]
    assert by_id["g-lab"].target_serial == serials_off["g-lab"]


async def test_a_rerun_after_a_crash_completes_the_rest_and_keeps_the_first_originals() -> None:
    sepm, store = FakeSepm(GROUPS, fail_patch_after=1), FakeStore()
    failed = await run("disable", sepm, store)
    assert isinstance(failed, CertificateVerificationFailed) and failed.retryable
    assert "503" in failed.reason
    sepm.fail_patch_after = None
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationSet)
    by_id = {g.group_id: g for g in event.groups}
    # The first location was already off on the re-run, yet it is reported as originally on.
    assert by_id["g-default"].original_values == {"loc-default": True, "loc-remote": True}
    assert len(sepm.patches) == 3  # each location that was on, patched exactly once


async def test_disable_again_changes_nothing() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    first = await run("disable", sepm, store)
    patches = len(sepm.patches)
    second = await run("disable", sepm, store)
    assert len(sepm.patches) == patches
    assert second == first


async def test_restore_without_a_disable_changes_nothing() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    event = await run("restore", sepm, store, saga="never-disabled")
    assert isinstance(event, CertificateVerificationSet) and event.groups == []
    assert sepm.patches == []


async def test_a_location_without_the_setting_fails_permanently() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()

    async def no_setting(group_id: str, location_id: str) -> dict:
        return {"configuration": {"general_settings": {}}}

    sepm.get_location_settings = no_setting  # type: ignore[method-assign]
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "secure_communications" in event.reason and "g-default" in event.reason


async def test_a_malformed_sepm_answer_is_a_final_failure_not_a_crash() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()

    async def strings(group_id: str, *, domain_id: str | None = None) -> list:
        raise SepmMalformedAnswerError("SEPM GET /groups/x/locations answered a number")

    sepm.group_locations = strings  # type: ignore[method-assign]
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "/locations" in event.reason


async def test_a_group_without_a_policy_serial_is_a_final_failure_not_a_key_error() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    real_groups = sepm.iter_groups

    async def groups_without_serial(*, page_size: int = 25):
        async for group in real_groups(page_size=page_size):
            yield {k: v for k, v in group.items() if k != "policySerialNumber"}

    sepm.iter_groups = groups_without_serial  # type: ignore[method-assign]
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "policySerialNumber" in event.reason
