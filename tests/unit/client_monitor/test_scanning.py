from datetime import timedelta
from typing import cast

import pytest

from certrotate_shared.clock import ManualClock
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm.api import SepmApi, SepmError, SepmMalformedAnswerError
from client_monitor.adapters.repository import WatchRecord
from client_monitor.domain.propagation import ClientStatus
from client_monitor.service_layer.scanning import WatchScanner
from client_monitor.settings import Settings
from tests.support.factories import site_target
from tests.unit.client_monitor.fakes import (
    DAY_MS,
    OLD_A,
    T0,
    T0_MS,
    TARGET_A,
    TARGETS,
    FakeSepm,
    computer,
)

pytestmark = pytest.mark.unit


class FakeHost:
    def __init__(self) -> None:
        self.clock = ManualClock(T0)

    def uow(self):  # scanning alone never writes
        raise AssertionError("no database in unit tests")


def api(fake: FakeSepm) -> SepmApi:
    """The fake answers the part of SEPM's API that a scan calls."""
    return cast(SepmApi, fake)


async def connect_fake(site: SiteTarget) -> SepmApi:
    return api(FakeSepm())


def scanner(master_key: str, **settings) -> WatchScanner:
    command = AwaitPolicyPropagation(
        idempotency_key="saga-1:await:1",
        site=site_target(),
        watch_id="w-1",
        groups=TARGETS,
        deadline=T0 + timedelta(days=7),
    )
    envelope = Envelope.wrap(command, saga_id="saga-1")
    record = WatchRecord(
        watch_id="w-1",
        saga_id="saga-1",
        site="site-a",
        status="open",
        deadline=command.deadline,
        envelope=envelope,
        counts=None,
        outcome_type=None,
        outcome=None,
        opened_at=T0,
        closed_at=None,
    )
    return WatchScanner(
        record,
        host=FakeHost(),
        connector=connect_fake,
        settings=Settings(
            master_key=master_key, internal_token="internal-token-for-tests-0123", **settings
        ),
        owner="me",
    )


async def test_a_full_scan_then_incremental_scans_from_the_newest_update_seen_or_the_start(
    master_key,
):
    sepm = FakeSepm()
    sepm.put(*(computer(n, last_update_ms=T0_MS - n * 1000) for n in range(2500)))
    watch = scanner(master_key, page_size=1000, last_update_overlap_ms=60_000)
    await watch.scan(api(sepm))
    assert watch.tally is not None and watch.tally.total == 2500 and watch.tally.reached == 0
    sepm.put(computer(7, serial_no=TARGET_A, last_update_ms=T0_MS + 5000))
    await watch.scan(api(sepm))
    assert sepm.scans == [0, T0_MS - 60_000]
    assert watch.tally.reached == 1
    await watch.scan(api(sepm))
    assert sepm.scans[-1] == T0_MS - 60_000  # the update seen is newer than the pass's start
    assert isinstance(watch.host, FakeHost)  # its clock is a ManualClock
    watch.host.clock.advance(30 * 60)
    await watch.scan(api(sepm))
    await watch.scan(api(sepm))
    assert sepm.scans[-1] == T0_MS + 5000 - 60_000  # newest seen, older than the last start


async def test_a_client_changing_during_a_long_full_scan_is_caught_by_the_next_pass(master_key):
    sepm = FakeSepm()
    early = computer(1)  # read on the first page, still on the old policy
    # ...while a client on a later page took the policy an hour into the (paced) scan.
    sepm.put(early, computer(2, serial_no=TARGET_A, last_update_ms=T0_MS + 3_600_000))
    watch = scanner(master_key, page_size=1)
    await watch.scan(api(sepm))
    assert watch.tally is not None and watch.tally.reached == 1
    # The first client took it ten minutes in, after its page was read.
    sepm.put(computer(1, serial_no=TARGET_A, last_update_ms=T0_MS + 600_000))
    assert isinstance(watch.host, FakeHost)  # its clock is a ManualClock
    watch.host.clock.advance(2 * 3600)
    await watch.scan(api(sepm))
    assert watch.tally.reached == 2


async def test_an_interrupted_scan_is_redone_from_the_previous_mark(master_key):
    sepm = FakeSepm()
    sepm.put(*(computer(n) for n in range(50)))
    watch = scanner(master_key, page_size=10)
    await watch.scan(api(sepm))
    sepm.put(*(computer(n, serial_no=TARGET_A, last_update_ms=T0_MS + n) for n in range(50)))
    sepm.fail_after_pages = 2
    with pytest.raises(SepmError):
        await watch.scan(api(sepm))
    await watch.scan(api(sepm))
    assert sepm.scans[1] == sepm.scans[2], "the retry must not skip clients the failed pass missed"
    assert watch.tally is not None and watch.tally.reached == 50


@pytest.mark.parametrize(
    "broken",
    [
        {"group": "My Company\\Default"},
        {"lastUpdateTime": "yesterday"},
        {"profileSerialNo": 12345},
        {"onlineStatus": "ONLINE"},
    ],
    ids=["group-string", "update-text", "serial-number", "status-text"],
)
async def test_a_malformed_computer_record_fails_the_scan_for_good(master_key, broken):
    sepm = FakeSepm()
    sepm.put(computer(1), {**computer(2), **broken})
    watch = scanner(master_key)
    with pytest.raises(SepmMalformedAnswerError) as raised:
        await watch.scan(api(sepm))
    assert raised.value.retryable is False
    assert f"{2:032X}" in str(raised.value)


async def test_clients_of_every_domain_are_counted(master_key):
    sepm = FakeSepm(domain_of={f"{n:032X}": "D-EMEA" for n in range(10, 20)})
    sepm.put(*(computer(n) for n in range(20)))
    sepm.put(computer(15, serial_no=TARGET_A))
    watch = scanner(master_key)
    await watch.scan(api(sepm))
    assert watch.tally is not None and watch.tally.total == 20 and watch.tally.reached == 1


async def test_stale_clients_are_listed_by_days_offline(master_key):
    sepm = FakeSepm()
    sepm.put(
        computer(1, serial_no=OLD_A, online=False, last_update_ms=T0_MS - 40 * DAY_MS),
        computer(2, serial_no=OLD_A),
        computer(3, serial_no=TARGET_A),
    )
    watch = scanner(master_key)
    await watch.scan(api(sepm))
    stale, _, _ = watch.lists.select(ClientStatus.STALE)
    stragglers, _, _ = watch.lists.select(ClientStatus.STRAGGLER)
    assert [r.computer_name for r in watch.table.rows(stale)] == ["WS00001"]
    assert [r.computer_name for r in watch.table.rows(stragglers)] == ["WS00002"]
    saved = list(watch.lists.pending_records())
    assert [(r["computer_name"], r["stale"], r["days_offline"]) for r in saved] == [
        ("WS00001", True, 40.0),
        ("WS00002", False, 0.0),
    ]


async def test_a_live_list_pages_in_unique_id_order_and_every_client_comes_once(master_key):
    sepm = FakeSepm()
    # SEPM hands clients out in its own order; the list's order is the uniqueId.
    numbers = [9, 3, 14, 1, 7, 12, 5, 2, 11]
    sepm.put(*(computer(n) for n in numbers), computer(4, serial_no=TARGET_A))
    watch = scanner(master_key)
    await watch.scan(api(sepm))
    pages, after = [], None
    while True:
        rows, _, after = watch.lists.select(ClientStatus.AT_RISK, after=after, limit=4)
        pages.append([watch.table.unique_id(i) for i in rows.tolist()])
        if after is None:
            break
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [uid for page in pages for uid in page] == [f"{n:032X}" for n in sorted(numbers)]
    # A client that appears between two pages is listed in its place, not lost.
    sepm.put(computer(13))
    await watch.scan(api(sepm))
    rows, _, _ = watch.lists.select(ClientStatus.AT_RISK, after=pages[1][-1], limit=4)
    assert [watch.table.unique_id(i) for i in rows.tolist()] == [f"{n:032X}" for n in (13, 14)]
