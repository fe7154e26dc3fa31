"""Freezing an at-risk list an operator accepts, so the record names exactly those clients.

The orchestrator keeps only the list's id, count and digest in its history; the rows live here,
immutable, readable by any replica for as long as the record must stand.
"""

from __future__ import annotations

import uuid
from typing import Any

from certrotate_shared.runtime import ServiceRuntime
from client_monitor.adapters import stored_clients
from client_monitor.adapters.repository import WatchRecord
from client_monitor.adapters.stored_clients import AcceptedList
from client_monitor.domain.listing import ListDigest, exported
from client_monitor.domain.propagation import ClientStatus
from client_monitor.service_layer.scanning import WatchScanner

BATCH = 5000


async def freeze_list(
    runtime: ServiceRuntime,
    record: WatchRecord,
    scanner: WatchScanner | None,
    status: ClientStatus,
) -> AcceptedList:
    """Store the watch's list in that status as it is now: live from this replica's scanner
    for an open watch, else the list saved when the watch closed."""
    list_id = f"al-{uuid.uuid4().hex}"
    digest = ListDigest()
    async with runtime.uow() as uow:
        if scanner is not None:
            rows, now_ms, _ = scanner.lists.select(status)
            batch: list[dict[str, Any]] = []
            for stored in scanner.lists.stored_rows(rows, now_ms):
                digest.add(exported(stored))
                batch.append(stored)
                if len(batch) >= BATCH:
                    await stored_clients.add_accepted_clients(uow.session, list_id, batch)
                    batch = []
            await stored_clients.add_accepted_clients(uow.session, list_id, batch)
        else:
            # A closed watch's saved list never changes: digest it, then copy it in the database.
            async for stored in stored_clients.stream_pending_clients(
                runtime.engine, record.watch_id, status=status.value
            ):
                digest.add(exported(stored))
            await stored_clients.copy_pending_to_accepted(
                uow.session, record.watch_id, status=status.value, list_id=list_id
            )
        accepted = AcceptedList(
            list_id=list_id,
            watch_id=record.watch_id,
            status=status.value,
            count=digest.count,
            sha256=digest.sha256,
            created_at=runtime.clock.now(),
        )
        await stored_clients.add_accepted_list(uow.session, accepted)
        await uow.commit()
    return accepted
