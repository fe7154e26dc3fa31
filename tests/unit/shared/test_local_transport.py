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
