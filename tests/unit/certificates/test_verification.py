"""SetCertificateVerification over every group and location, against a fake SEPM."""

from __future__ import annotations

from typing import Literal, cast

import pytest

from certificates.service_layer.verification import check_verification, set_verification
from certrotate_shared.messages.certificates import (
    CertificateVerificationChecked,
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CertificateVerificationSet,
    GroupVerification,
)
from certrotate_shared.sepm import SepmError, SepmMalformedAnswerError
from certrotate_shared.sepm.api import SepmApi
from tests.unit.certificates.fakes import FakeSepm, FakeStore, site


def api(fake: FakeSepm) -> SepmApi:
    """The fake answers the part of SEPM's API that verification calls."""
    return cast(SepmApi, fake)


pytestmark = pytest.mark.unit

GROUPS = {
    "g-default": {"loc-default": True, "loc-remote": True},
    "g-laptops": {"loc-default": True},
    "g-lab": {"loc-default": False},  # already off before the rotation
}


async def run(
    mode: Literal["disable", "restore"], sepm: FakeSepm, store: FakeStore, saga: str = "saga-1"
):
    return await set_verification(site=site(), mode=mode, saga_id=saga, sepm=api(sepm), store=store)


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

    async def groups_without_serial(*, domain_id=None, page_size: int = 25):
        async for group in real_groups(domain_id=domain_id, page_size=page_size):
            yield {k: v for k, v in group.items() if k != "policySerialNumber"}

    sepm.iter_groups = groups_without_serial  # type: ignore[method-assign]
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "policySerialNumber" in event.reason


# -- every domain, owning groups only (issue 10 item 2) -----------------------------------------

TREE = {
    "g-root": {"loc-root-default": True, "loc-root-vpn": True},
    "g-servers": {"loc-servers": True},
    "g-emea": {"loc-emea": True},
}
INHERITS = {"g-laptops": "g-root", "g-laptops-vip": "g-laptops", "g-paris": "g-emea"}
DOMAINS = {"g-emea": "D-EMEA"}


def tree() -> FakeSepm:
    return FakeSepm(TREE, inherits=INHERITS, domain_of=DOMAINS)


async def test_disable_changes_every_domain() -> None:
    sepm, store = tree(), FakeStore()
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationSet)
    assert sepm.settings["g-emea"] == {"loc-emea": False}
    by_id = {g.group_id: g for g in event.groups}
    assert by_id["g-emea"].original_values == {"loc-emea": True}


async def test_disable_patches_only_groups_that_own_their_policy() -> None:
    sepm, store = tree(), FakeStore()
    await run("disable", sepm, store)
    patched_groups = {group for group, _, _ in sepm.patches}
    assert patched_groups == {"g-root", "g-servers", "g-emea"}
    assert len(sepm.patches) == 4  # each owned location once, never again through a child


async def test_every_group_is_reported_and_an_inheriting_one_waits_for_its_owners_serial() -> None:
    sepm, store = tree(), FakeStore()
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationSet)
    by_id = {g.group_id: g for g in event.groups}
    assert set(by_id) == {*TREE, *INHERITS}
    assert by_id["g-laptops-vip"].target_serial == sepm.serials["g-root"]
    assert by_id["g-paris"].target_serial == sepm.serials["g-emea"]
    assert by_id["g-laptops-vip"].original_values == {}


async def test_restore_puts_back_every_domain_and_reports_every_group() -> None:
    sepm, store = tree(), FakeStore()
    disabled = await run("disable", sepm, store)
    assert isinstance(disabled, CertificateVerificationSet)
    event = await restore(sepm, store, disabled.groups)
    assert isinstance(event, CertificateVerificationSet)
    assert sepm.settings == TREE
    assert {g.group_id for g in event.groups} == {*TREE, *INHERITS}


# -- restore exactly the originals the orchestrator recorded (issue 9 item 3) ------------------


async def restore(sepm: FakeSepm, store: FakeStore, originals, saga: str = "saga-1"):
    return await set_verification(
        site=site(), mode="restore", saga_id=saga, sepm=api(sepm), store=store, originals=originals
    )


def recorded(group_id: str, values: dict[str, bool]) -> GroupVerification:
    return GroupVerification(
        group_id=group_id,
        full_path_name=f"My Company\\{group_id}",
        original_values=values,
        target_serial="irrelevant",
    )


async def test_restore_uses_the_originals_the_orchestrator_sends() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    await run("disable", sepm, store)
    # The orchestrator's record wins over the worker's (here: g-lab was on per the saga).
    event = await restore(sepm, store, [recorded("g-lab", {"loc-default": True})])
    assert isinstance(event, CertificateVerificationSet)
    assert sepm.settings["g-lab"] == {"loc-default": True}
    # What the worker recorded besides is put back too: never leave a location off.
    assert sepm.settings["g-default"] == GROUPS["g-default"]


async def test_a_disable_that_failed_midway_is_restored_from_the_workers_record() -> None:
    # The orchestrator saw no CertificateVerificationSet, so it has no originals to send; the
    # locations the failed disable turned off must come back all the same.
    sepm, store = FakeSepm(GROUPS, fail_patch_after=2), FakeStore()
    failed = await run("disable", sepm, store)
    assert isinstance(failed, CertificateVerificationFailed)
    sepm.fail_patch_after = None
    event = await restore(sepm, store, [])
    assert isinstance(event, CertificateVerificationSet)
    assert sepm.settings == GROUPS


async def test_restore_without_originals_falls_back_to_the_workers_record() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    await run("disable", sepm, store)
    event = await restore(sepm, store, None)
    assert isinstance(event, CertificateVerificationSet)
    assert sepm.settings == GROUPS


async def test_restore_with_nothing_recorded_is_a_failure_not_a_completion() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    event = await restore(sepm, store, None, saga="never-disabled")
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "nothing" in event.reason
    event = await restore(sepm, store, [], saga="never-disabled")
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert sepm.patches == []


async def test_a_location_that_cannot_be_restored_fails_the_restore_after_restoring_the_rest():
    sepm, store = FakeSepm(GROUPS), FakeStore()
    disabled = await run("disable", sepm, store)
    assert isinstance(disabled, CertificateVerificationSet)
    del sepm.settings["g-laptops"]  # an administrator deleted the group during the wait
    event = await restore(sepm, store, disabled.groups)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "My Company\\g-laptops" in event.reason and "loc-default" in event.reason
    assert sepm.settings["g-default"] == GROUPS["g-default"]


async def test_a_transient_error_during_restore_is_reported_retryable() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    disabled = await run("disable", sepm, store)
    assert isinstance(disabled, CertificateVerificationSet)
    sepm.fail_patch_after = len(sepm.patches)
    event = await restore(sepm, store, disabled.groups)
    assert isinstance(event, CertificateVerificationFailed) and event.retryable


async def test_a_rerun_of_disable_after_someone_re_enabled_keeps_the_first_original() -> None:
    sepm, store = FakeSepm(GROUPS), FakeStore()
    await run("disable", sepm, store)
    sepm.settings["g-lab"]["loc-default"] = True  # another admin, during the wait
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationSet)
    by_id = {g.group_id: g for g in event.groups}
    assert by_id["g-lab"].original_values == {"loc-default": False}
    assert sepm.settings["g-lab"]["loc-default"] is False


async def test_disable_that_finds_no_location_at_all_is_a_failure() -> None:
    sepm, store = FakeSepm({"g-empty": {}}), FakeStore()
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable


# -- the gate before the swap (issue 9 item 3) --------------------------------------------------


async def test_check_reports_every_location_turned_back_on_in_every_domain() -> None:
    sepm, store = tree(), FakeStore()
    await run("disable", sepm, store)
    sepm.settings["g-emea"]["loc-emea"] = True  # re-enabled during the wait
    event = await check_verification(site=site(), sepm=api(sepm))
    assert isinstance(event, CertificateVerificationChecked)
    assert event.locations_checked == 4  # owned locations only, each once
    assert [(e.group_id, e.location_id) for e in event.enabled] == [("g-emea", "loc-emea")]
    assert event.enabled[0].full_path_name == "My Company\\g-emea"


async def test_check_with_everything_off_reports_nothing_enabled() -> None:
    sepm, store = tree(), FakeStore()
    await run("disable", sepm, store)
    event = await check_verification(site=site(), sepm=api(sepm))
    assert isinstance(event, CertificateVerificationChecked) and event.enabled == []


async def test_check_that_cannot_read_sepm_fails() -> None:
    sepm = tree()

    async def unreachable(group_id: str, location_id: str) -> dict:
        raise SepmError("cannot reach sepm-a1: connection refused")

    sepm.get_location_settings = unreachable  # type: ignore[method-assign]
    event = await check_verification(site=site(), sepm=api(sepm))
    assert isinstance(event, CertificateVerificationCheckFailed) and event.retryable
    assert "connection refused" in event.reason


async def test_an_inheriting_group_without_a_listed_owner_is_a_final_failure() -> None:
    sepm, store = FakeSepm(GROUPS, inherits={"g-kiosks": "g-laptops"}), FakeStore()
    real_groups = sepm.iter_groups
    listings = [0]

    async def owner_gone_after_disable(*, domain_id=None, page_size: int = 25):
        listings[0] += 1
        async for group in real_groups(domain_id=domain_id, page_size=page_size):
            # The owner is deleted between the change and the report of serials.
            if listings[0] == 1 or group["id"] != "g-laptops":
                yield group

    sepm.iter_groups = owner_gone_after_disable  # type: ignore[method-assign]
    event = await run("disable", sepm, store)
    assert isinstance(event, CertificateVerificationFailed) and not event.retryable
    assert "g-laptops" in event.reason
