"""The fleet's check-in rules, driven directly on a small fleet (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from sepm_twin.fleet import DAY_MS, Fleet, FleetGroup
from sepm_twin.groups import Domain, Group, Location, default_settings

pytestmark = pytest.mark.unit

START = 1_700_000_000_000
OLD, NEW = 0b01, 0b10
DOMAIN = Domain("D" * 32, "Default", START - 400 * DAY_MS)


def make_fleet(*, clients: int = 100, push: bool = False, offline: float = 0.0) -> Fleet:
    group = Group(
        id="ABCD" + "0" * 28,
        full_path="My Company\\Default",
        policy_time_ms=START - DAY_MS,
        domain=DOMAIN,
        locations=[
            Location("L" * 32, "Default", default_settings(secure=True, push=push, heartbeat_s=300))
        ],
    )
    fleet = Fleet(
        groups=[FleetGroup(group, clients, offline, 10 if offline else 0)],
        server_count=1,
        start_ms=START,
        trusted_mask=OLD,
        rng=np.random.default_rng(0),
    )
    fleet.s_bit[0] = OLD
    return fleet


def set_verification(fleet: Fleet, group: Group, secure: bool, at: int) -> None:
    group.locations[0].settings["general_settings"]["security_settings"][
        "secure_communications"
    ] = secure
    group.policy_time_ms = at
    fleet.refresh_group(0, group)
    fleet.notify_push(0, at)


def group_of(fleet: Fleet) -> Group:
    return Group(
        id=fleet.group_ids[0],
        full_path="My Company\\Default",
        policy_time_ms=int(fleet.g_time[0]),
        domain=DOMAIN,
        locations=[
            Location(
                "L" * 32, "Default", default_settings(secure=True, push=False, heartbeat_s=300)
            )
        ],
    )


def test_swapping_the_certificate_under_verifying_clients_orphans_each_that_checks_in() -> None:
    fleet = make_fleet()
    fleet.s_bit[0] = NEW
    fleet.tick(START + 301_000)
    assert fleet.orphaned.all()


def test_clients_with_verification_off_survive_a_swap_and_pin_the_new_cert_later() -> None:
    fleet = make_fleet()
    group = group_of(fleet)
    set_verification(fleet, group, False, START + 1)
    fleet.tick(START + 301_000)
    assert not fleet.applied_secure.any()
    fleet.s_bit[0] = NEW  # a complete swap: served and recorded in the management server list
    fleet.msl_mask = np.uint64(NEW)
    fleet.tick(START + 601_000)
    set_verification(fleet, group, True, START + 601_001)
    fleet.tick(START + 1_000_000)
    assert not fleet.orphaned.any()
    assert (fleet.trusted & NEW).all()
    assert (fleet.applied_time == START + 601_001).all()


def test_push_clients_fetch_a_change_within_a_minute() -> None:
    fleet = make_fleet(push=True)
    group = group_of(fleet)
    set_verification(fleet, group, False, START + 10)
    fleet.tick(START + 10 + 60_000)
    assert (fleet.applied_time == START + 10).all()


def test_pull_clients_wait_for_their_heartbeat() -> None:
    fleet = make_fleet(push=False)
    fleet.tick(START + 1)
    group = group_of(fleet)
    set_verification(fleet, group, False, START + 2)
    fleet.tick(START + 60_000)
    updated = int((fleet.applied_time == START + 2).sum())
    assert 0 < updated < fleet.size  # only those whose heartbeat fell in the first minute
    fleet.tick(START + 302_000)
    assert (fleet.applied_time == START + 2).all()


def test_offline_clients_do_nothing_until_they_come_back() -> None:
    fleet = make_fleet(offline=0.25)
    away = fleet.offline_until > 0
    assert int(away.sum()) == 25
    group = group_of(fleet)
    set_verification(fleet, group, False, START + 1)
    fleet.tick(START + 9 * DAY_MS)
    assert (fleet.applied_time[away] != START + 1).all()
    assert not fleet.online(np.flatnonzero(away)).any()
    fleet.s_bit[0] = NEW
    fleet.tick(START + 11 * DAY_MS)
    assert fleet.orphaned[away].all()
    assert not fleet.orphaned[~away].any()


def test_a_stopped_server_fails_check_ins_without_orphaning() -> None:
    fleet = make_fleet()
    group = group_of(fleet)
    fleet.s_up[0] = False
    fleet.s_bit[0] = NEW
    set_verification(fleet, group, False, START + 1)
    fleet.tick(START + 301_000)
    assert not fleet.orphaned.any()
    # Nobody reached the server, so nobody has the policy changed meanwhile.
    assert not (fleet.applied_time == START + 1).any()
    assert fleet.check_ins == 0


def test_a_swap_that_leaves_the_recorded_certificate_orphans_when_verification_returns() -> None:
    fleet = make_fleet()
    group = group_of(fleet)
    set_verification(fleet, group, False, START + 1)
    fleet.tick(START + 301_000)
    fleet.s_bit[0] = NEW  # the files changed, SEPM's record (msl_mask) did not
    set_verification(fleet, group, True, START + 301_001)
    fleet.tick(START + 602_000)  # each takes the verifying policy: it pins the OLD certificate
    assert (fleet.applied_secure & (fleet.trusted == OLD)).all()
    fleet.tick(START + 903_000)  # and meets NEW at its next check-in
    assert fleet.orphaned.all()


def test_a_communication_update_package_reconnects_an_orphan() -> None:
    fleet = make_fleet(clients=3)
    fleet.s_bit[0] = NEW
    fleet.msl_mask = np.uint64(NEW)
    fleet.tick(START + 301_000)
    fleet.apply_communication_update_package(1, START + 301_000)
    fleet.tick(START + 700_000)
    assert fleet.orphaned.tolist() == [True, False, True]
    assert int(fleet.trusted[1]) == NEW
