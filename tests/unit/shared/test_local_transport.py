from __future__ import annotations

import pytest

from certrotate_shared.transport.base import OutgoingRecord
from certrotate_shared.transport.local import LocalTransport, partition_for

pytestmark = pytest.mark.unit


async def test_local_log_keeps_per_key_order_and_resumes_from_committed_offsets(tmp_path):
    path = str(tmp_path / "log.db")
    transport = LocalTransport(path)
    await transport.start()
    await transport.publish([OutgoingRecord("t", "saga-1", f"m{i}".encode()) for i in range(5)])
    sub = transport.subscribe("g", ["t"])
    await sub.start()
    batches = await sub.poll(0.1)
    (records,) = batches.values()
    assert [r.value for r in records] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert {r.partition for r in records} == {partition_for("saga-1")}
    await sub.commit({(records[2].topic, records[2].partition): records[2]})  # m0..m2 done
    await transport.stop()

    # A restart: everything after the committed offset comes again, nothing before it.
    reopened = LocalTransport(path)
    sub = reopened.subscribe("g", ["t"])
    await sub.start()
    (records,) = (await sub.poll(0.1)).values()
    assert [r.value for r in records] == [b"m3", b"m4"]
    # Another group reads from the start on its own offsets.
    other = reopened.subscribe("h", ["t"])
    await other.start()
    (records,) = (await other.poll(0.1)).values()
    assert len(records) == 5
    await reopened.stop()


async def test_a_poller_wakes_when_something_is_published(tmp_path):
    import asyncio

    transport = LocalTransport(str(tmp_path / "log.db"))
    await transport.start()
    sub = transport.subscribe("g", ["t"])
    await sub.start()
    waiting = asyncio.create_task(sub.poll(30.0))
    await asyncio.sleep(0.05)
    await transport.publish([OutgoingRecord("t", "k", b"hello", [("h", b"v")])])
    batches = await asyncio.wait_for(waiting, 5.0)
    (records,) = batches.values()
    assert records[0].value == b"hello"
    assert records[0].headers == [("h", b"v")]
    await transport.stop()


def stored(transport: LocalTransport) -> list[bytes]:
    """The values the log still holds, in offset order."""
    rows = transport.db.execute("SELECT value FROM records ORDER BY topic, partition, offset")
    return [bytes(value) for (value,) in rows]


async def consume(transport: LocalTransport, group: str, through: int) -> None:
    """Group `group` reads topic t and commits every record up to offset `through`."""
    sub = transport.subscribe(group, ["t"])
    await sub.start()
    (records,) = (await sub.poll(0.1)).values()
    last = next(r for r in records if r.offset == through)
    await sub.commit({(last.topic, last.partition): last})


async def test_records_every_group_has_committed_past_are_deleted(tmp_path):
    path = str(tmp_path / "log.db")
    transport = LocalTransport(path)
    await transport.start()
    await transport.publish([OutgoingRecord("t", "saga-1", f"m{i}".encode()) for i in range(10)])
    await consume(transport, "fast", through=7)
    await consume(transport, "slow", through=3)

    # The slower group still needs m4 and later: only what both are past goes.
    assert await transport.truncate() == 4
    assert stored(transport) == [f"m{i}".encode() for i in range(4, 10)]

    await consume(transport, "slow", through=9)
    await consume(transport, "fast", through=9)
    assert await transport.truncate() == 5
    # The newest record stays: the next one published continues its offsets.
    assert stored(transport) == [b"m9"]
    await transport.publish([OutgoingRecord("t", "saga-1", b"m10")])
    await transport.stop()

    # After a restart each group gets the one record it has not handled, at its offset.
    reopened = LocalTransport(path)
    for group in ("fast", "slow"):
        sub = reopened.subscribe(group, ["t"])
        await sub.start()
        (records,) = (await sub.poll(0.1)).values()
        assert [(r.offset, r.value) for r in records] == [(10, b"m10")]
    await reopened.stop()


async def test_a_group_that_has_not_committed_yet_keeps_every_record(tmp_path):
    transport = LocalTransport(str(tmp_path / "log.db"))
    await transport.start()
    await transport.publish([OutgoingRecord("t", "saga-1", f"m{i}".encode()) for i in range(5)])
    await consume(transport, "done", through=4)
    reading = transport.subscribe("reading", ["t"])
    await reading.start()  # polling its first batch, nothing handled yet

    assert await transport.truncate() == 0
    (records,) = (await reading.poll(0.1)).values()
    assert [r.value for r in records] == [f"m{i}".encode() for i in range(5)]
    await transport.stop()


async def test_committing_truncates_the_log_as_it_goes(tmp_path):
    transport = LocalTransport(str(tmp_path / "log.db"), truncate_every=10)
    await transport.start()
    sub = transport.subscribe("g", ["t"])
    await sub.start()
    for i in range(100):
        await transport.publish([OutgoingRecord("t", "saga-1", f"m{i}".encode())])
        (records,) = (await sub.poll(0.1)).values()
        await sub.commit({(records[-1].topic, records[-1].partition): records[-1]})
    # Without truncation the log would hold all 100; now at most the last ten commits' worth.
    assert len(stored(transport)) <= 10
    assert stored(transport)[-1] == b"m99"
    await transport.stop()
