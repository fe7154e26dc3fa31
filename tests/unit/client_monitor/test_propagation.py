from datetime import timedelta

import pytest

from client_monitor.domain.clients import ClientTable
from client_monitor.domain.propagation import ClientStatus, Verdict, judge, masks, tally
from tests.unit.client_monitor.fakes import (
    DAY_MS,
    GROUP_B,
    LATER_A,
    OLD_A,
    OLD_B,
    T0,
    T0_MS,
    TARGET_A,
    TARGET_B,
    TARGETS,
    computer,
    page,
)

pytestmark = pytest.mark.unit
NOW_MS = T0_MS + 2 * DAY_MS


def fleet() -> ClientTable:
    table = ClientTable(TARGETS, capacity=2)  # small, so the columns must grow
    table.ingest(
        page(
            [
                computer(1, serial_no=TARGET_A),
                computer(2, serial_no=LATER_A, online=False, last_update_ms=NOW_MS - DAY_MS // 2),
                computer(3, serial_no=OLD_A),  # pending, online
                computer(4, serial_no=OLD_A, online=False, last_update_ms=NOW_MS - DAY_MS // 2),
                computer(5, serial_no=OLD_A, online=False, last_update_ms=NOW_MS - 3 * DAY_MS),
                computer(6, serial_no=OLD_A, online=False, last_update_ms=NOW_MS - 10 * DAY_MS),
                computer(7, serial_no=OLD_A, online=False, last_update_ms=NOW_MS - 45 * DAY_MS),
                computer(8, group=GROUP_B, serial_no=TARGET_B),
                computer(9, group=GROUP_B, serial_no=OLD_B),
                # moved to B but still holding A's newer serial: not B's policy
                computer(10, group=GROUP_B, serial_no=LATER_A),
                computer(11, group="FFFF0000000000000000000000000000", serial_no=TARGET_A),
            ]
        )
    )
    return table


def test_counts_reached_pending_online_offline_by_days_and_stale():
    t = tally(fleet(), now_ms=NOW_MS, stale_horizon_days=30)
    assert t.total == 10  # the client of an unwatched group is not counted
    assert t.reached == 3
    assert t.pending_online == 3  # 3, 9, 10
    assert t.pending_offline == 4
    assert t.pending_offline_by_days == {"0-1": 1, "1-7": 1, "7-30": 1, "30+": 1}
    assert t.stale == 1  # client 7: offline 45 days
    assert t.orphan_risk == 7  # every pending client still verifies the old certificate
    assert t.seen == 9
    assert t.percent == pytest.approx(33.33)


def test_lists_split_pending_into_stragglers_and_stale():
    table = fleet()
    m = masks(table, now_ms=NOW_MS, stale_horizon_days=30)

    def names(status: ClientStatus) -> list[str]:
        return [r.computer_name for r in table.rows(m.of(status).nonzero()[0])]

    assert names(ClientStatus.STALE) == ["WS00007"]
    assert names(ClientStatus.STRAGGLER) == [
        *("WS00003", "WS00004", "WS00005", "WS00006"),
        *("WS00009", "WS00010"),
    ]
    assert names(ClientStatus.AT_RISK) == names(ClientStatus.PENDING)
    row = next(table.rows(m.of(ClientStatus.STALE).nonzero()[0]))
    assert row.group == "My Company\\Default"
    assert row.profile_serial == OLD_A
    assert row.days_offline(NOW_MS) == pytest.approx(45)


def test_an_incremental_page_updates_clients_in_place():
    table = fleet()
    table.ingest(
        page([computer(3, serial_no=TARGET_A), computer(9, group=GROUP_B, serial_no=TARGET_B)])
    )
    assert len(table) == 10
    assert tally(table, now_ms=NOW_MS, stale_horizon_days=30).reached == 5


def test_a_client_that_moves_to_an_unwatched_group_leaves_the_counts():
    table = fleet()
    table.ingest(page([computer(3, group="FFFF0000000000000000000000000000")]))
    assert tally(table, now_ms=NOW_MS, stale_horizon_days=30).total == 9


def test_threshold_counts_only_clients_seen_within_the_horizon():
    table = ClientTable(TARGETS)
    table.ingest(page([computer(n, serial_no=TARGET_A) for n in range(9)]))
    table.ingest(page([computer(99, online=False, last_update_ms=NOW_MS - 40 * DAY_MS)]))
    t = tally(table, now_ms=NOW_MS, stale_horizon_days=30)
    assert t.threshold_met(1.0)  # the stale client is listed, not waited on
    t = tally(table, now_ms=NOW_MS, stale_horizon_days=60)
    assert not t.threshold_met(1.0)
    assert t.threshold_met(0.9)
    assert not t.threshold_met(0.95)


def test_the_stale_horizon_is_inclusive():
    # Offline for exactly the horizon still counts as seen (waited on); a minute more is stale.
    table = ClientTable(TARGETS)
    table.ingest(
        page(
            [
                computer(1, online=False, last_update_ms=NOW_MS - 30 * DAY_MS),
                computer(2, online=False, last_update_ms=NOW_MS - 30 * DAY_MS - 60_000),
            ]
        )
    )
    t = tally(table, now_ms=NOW_MS, stale_horizon_days=30)
    assert (t.seen, t.stale) == (1, 1)


def test_propagated_wins_over_a_deadline_passed_in_the_same_scan():
    table = ClientTable(TARGETS)
    table.ingest(page([computer(1, serial_no=TARGET_A), computer(2)]))
    t = tally(table, now_ms=T0_MS, stale_horizon_days=30)
    deadline = T0 + timedelta(days=1)
    assert judge(t, threshold=1.0, deadline=deadline, now=T0) is Verdict.WAITING
    assert judge(t, threshold=0.5, deadline=deadline, now=T0) is Verdict.PROPAGATED
    assert judge(t, threshold=1.0, deadline=deadline, now=deadline) is Verdict.STALLED
    assert judge(None, threshold=1.0, deadline=deadline, now=deadline) is Verdict.STALLED
    assert judge(t, threshold=0.5, deadline=deadline, now=deadline) is Verdict.PROPAGATED


def test_an_empty_fleet_has_nothing_to_wait_for():
    t = tally(ClientTable(TARGETS), now_ms=T0_MS, stale_horizon_days=30)
    assert t.total == 0 and t.threshold_met(1.0) and t.percent == 100.0


def test_clients_whose_ids_share_an_index_key_stay_distinct(monkeypatch):
    from client_monitor.domain import clients

    # Every id gets the same key: each is still found by its own text, page after page.
    monkeypatch.setattr(clients, "_key", lambda unique_id: 42)
    table = ClientTable(TARGETS)
    table.ingest(page([computer(1), computer(2, serial_no=TARGET_A)]))
    table.ingest(page([computer(3), computer(1, serial_no=TARGET_A), computer(3)]))
    table.ingest(page([computer(2), computer(3, serial_no=LATER_A)]))
    assert len(table) == 3
    assert [table.unique_id(i) for i in range(3)] == [f"{n:032X}" for n in (1, 2, 3)]
    assert table.reached[:3].tolist() == [True, False, True]


def test_a_large_fleet_is_found_again_after_its_index_is_merged():
    table = ClientTable(TARGETS)
    for start in range(0, 150_000, 1000):
        table.ingest(page([computer(n) for n in range(start, start + 1000)]))
    table.ingest(page([computer(n, serial_no=TARGET_A) for n in range(0, 150_000, 7)]))
    assert len(table) == 150_000
    assert int(table.reached[: len(table)].sum()) == len(range(0, 150_000, 7))
    assert table.unique_id(149_999) == f"{149_999:032X}"
