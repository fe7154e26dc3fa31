"""Client lists over real PostgreSQL: pages by uniqueId with a cursor, JSON lines, and at-risk
lists frozen for the record (issue 11 item 10), from a live watch and from a closed one."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import httpx
import pytest

from tests.integration.client_monitor.conftest import API_HEADERS, scenario

pytestmark = pytest.mark.integration

AWAY = {"name": "My Company\\Default", "clients": 3000, "offline": {"fraction": 1.0, "days": 3}}


async def read_pages(api: httpx.AsyncClient, path: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await api.get(path, params=params)
        assert page.status_code == 200, page.text
        pages.append([c["uniqueId"] for c in page.json()["clients"]])
        cursor = page.json()["next_cursor"]
        assert cursor == page.headers.get("x-next-cursor")
        if cursor is None:
            return pages


async def test_lists_page_by_cursor_and_accepted_lists_read_back_exactly(make_stack):
    stack = await make_stack(scenario(AWAY))
    monitor = await stack.start_monitor()
    targets = await stack.disable_verification()
    _, watch_id, _ = await stack.watch(targets, deadline_in=timedelta(days=1))
    await stack.probe.wait_for("PropagationProgressed")
    clients = f"/v1/watches/{watch_id}/clients"
    async with httpx.AsyncClient(base_url=monitor.http_url, headers=API_HEADERS) as api:
        live = await read_pages(api, clients, 1000)
        assert [len(p) for p in live] == [1000, 1000, 1000]
        ids = [uid for page in live for uid in page]
        assert ids == sorted(set(ids))
        lines = (await api.get(clients, params={"format": "jsonl"})).text.splitlines()
        assert [json.loads(line)["uniqueId"] for line in lines] == ids
        refused = await api.get(clients, params={"cursor": "made-up"})
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_cursor"

        # Accepted while the watch is open: frozen from the live list.
        frozen = await api.post(f"/v1/watches/{watch_id}/accepted-lists", json={})
        assert frozen.status_code == 201, frozen.text
        reference = frozen.json()
        assert reference["count"] == 3000
        exported = await api.get(
            f"/v1/accepted-lists/{reference['list_id']}/clients", params={"format": "jsonl"}
        )
        assert hashlib.sha256(exported.content).hexdigest() == reference["sha256"]
        path = f"/v1/accepted-lists/{reference['list_id']}/clients"
        assert [uid for page in await read_pages(api, path, 1200) for uid in page] == ids

        # The deadline passes: the saved list pages the same way, and freezes in the database.
        await stack.advance(2 * 86_400)
        await stack.probe.wait_for("PropagationStalled")
        assert [uid for page in await read_pages(api, clients, 700) for uid in page] == ids
        closed = (await api.post(f"/v1/watches/{watch_id}/accepted-lists")).json()
        assert closed["count"] == 3000 and closed["list_id"] != reference["list_id"]
        again = await api.get(
            f"/v1/accepted-lists/{closed['list_id']}/clients", params={"format": "jsonl"}
        )
        assert hashlib.sha256(again.content).hexdigest() == closed["sha256"]
        # The first list is still exactly what was accepted.
        first = await api.get(f"/v1/accepted-lists/{reference['list_id']}")
        assert first.json()["sha256"] == reference["sha256"]
