"""Conditional reads of a rotation (RFC 9110): a poller that holds the current ETag gets an
empty 304, one that holds an older tag gets the new view and its new tag. On SQLite and on
PostgreSQL, since the tag is read from the stored state without loading it."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import insert, update

from orchestrator.adapters.orm import operator_tasks
from orchestrator.adapters.repository import to_db
from tests.integration.orchestrator.support import rotation_body, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request):
    return request.getfixturevalue("embedded" if request.param == "sqlite" else "embedded_pg")


async def waiting_for_approval(env) -> str:
    created = await env.api.post("/v1/rotations", json=rotation_body(require_approval=True))
    assert created.status_code == 201, created.text
    rotation_id = created.json()["id"]

    async def at_the_gate() -> bool:
        view = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()
        return "approval" in view["gates"]["waiting_for"]

    await wait_until(at_the_gate)
    return rotation_id


async def get(env, path: str, if_none_match: str | None = None) -> httpx.Response:
    headers = {"If-None-Match": if_none_match} if if_none_match is not None else {}
    return await env.api.get(path, headers=headers)


async def test_a_rotation_read_again_with_its_etag_is_not_modified_until_it_moves(env):
    rotation_id = await waiting_for_approval(env)
    path = f"/v1/rotations/{rotation_id}"
    first = await get(env, path)
    tag = first.headers["etag"]
    assert first.status_code == 200 and tag.startswith('"') and not tag.startswith("W/")
    assert first.headers["cache-control"] == "private, no-cache"

    again = await get(env, path, tag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    # Answered twice (the second time from the answers built before): the same bytes.
    assert (await get(env, path)).content == first.content

    paused = await env.api.post(f"{path}/pause", json={"reason": "change freeze"})
    assert paused.status_code == 200, paused.text
    moved = await get(env, path, tag)
    assert moved.status_code == 200
    assert moved.headers["etag"] != tag
    assert moved.json()["hold"] == {"paused": True, "reason": "change freeze"}
    assert (await get(env, path, moved.headers["etag"])).status_code == 304


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ('"stale", {current}', 304),  # a list: any tag in it
        ('"stale" , W/{current}', 304),  # a weak tag compares weakly (RFC 9110 13.1.2)
        ("*", 304),  # the rotation exists
        ('"stale", "older"', 200),
        ('W/"stale"', 200),
        ("{current}junk", 200),  # does not parse: names nothing
    ],
)
async def test_if_none_match_takes_a_list_weak_tags_and_a_star(env, header, status):
    rotation_id = await waiting_for_approval(env)
    path = f"/v1/rotations/{rotation_id}"
    current = (await get(env, path)).headers["etag"]
    answer = await get(env, path, header.format(current=current))
    assert answer.status_code == status
    assert answer.headers["etag"] == current


async def test_a_star_does_not_hide_that_a_rotation_does_not_exist(env):
    answer = await get(env, "/v1/rotations/no-such-rotation", "*")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


async def test_the_history_is_not_modified_until_an_entry_is_added(env):
    rotation_id = await waiting_for_approval(env)
    path = f"/v1/rotations/{rotation_id}/events"
    first = await get(env, path)
    tag = first.headers["etag"]
    assert first.status_code == 200
    assert (await get(env, path, tag)).status_code == 304

    await env.api.post(f"/v1/rotations/{rotation_id}/pause", json={"reason": "change freeze"})
    grown = await get(env, path, tag)
    assert grown.status_code == 200 and grown.headers["etag"] != tag
    added = grown.json()["items"][len(first.json()["items"]) :]
    assert [e["type"] for e in added if e["kind"] == "operator"] == ["PauseRequested"]
    # A later page (after the last entry read) carries the same tag: nothing new since.
    last = grown.json()["items"][-1]["seq"]
    later = await get(env, f"{path}?after={last}", grown.headers["etag"])
    assert later.status_code == 304


async def test_the_history_of_a_rotation_that_does_not_exist_is_not_found(env):
    for tag in (None, "*", '"h0"'):
        answer = await get(env, "/v1/rotations/no-such-rotation/events", tag)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"


async def test_open_tasks_asked_at_one_instant_show_in_one_order_under_one_tag(env):
    rotation_id = await waiting_for_approval(env)
    path = f"/v1/rotations/{rotation_id}"
    before = (await get(env, path)).headers["etag"]
    asked = to_db(env.clock.now())
    async with env.runtime.uow() as uow:
        for task_id in ("task-b", "task-a"):  # stored in the other order than their ids
            await uow.session.execute(
                insert(operator_tasks).values(
                    task_id=task_id, saga_id=rotation_id, service="certificates", site="site-a",
                    server="sepm-a1", title=f"Do {task_id}", instructions="by hand",
                    verification="seen", status="open", requested_at=asked, confirmations=0,
                )
            )  # fmt: skip
        await uow.commit()
    first, second = await get(env, path), await get(env, path)
    assert first.headers["etag"] == second.headers["etag"] != before
    assert [t["task_id"] for t in first.json()["open_tasks"]] == ["task-a", "task-b"]
    assert (await get(env, path, first.headers["etag"])).status_code == 304
    async with env.runtime.uow() as uow:
        await uow.session.execute(
            update(operator_tasks).where(operator_tasks.c.task_id == "task-a").values(status="done")
        )
        await uow.commit()
    after = await get(env, path, first.headers["etag"])
    assert after.status_code == 200
    assert [t["task_id"] for t in after.json()["open_tasks"]] == ["task-b"]
