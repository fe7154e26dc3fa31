"""The dashboard over HTTP (no browser): sign-in cookie, role-bound buttons, CSRF, live regions.

The browser tests (tests/browser) drive the same pages in Chromium; these pin down what a
browser does not show: cookie attributes, refusals, and that the API stays the only judge.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from orchestrator.entrypoints.dashboard.session import COOKIE
from tests.integration.orchestrator.support import (
    rotation_body,
    server_body,
    site_body,
    wait_until,
)

pytestmark = pytest.mark.integration


async def token(env, name: str, role: str) -> str:
    made = await env.api.post("/v1/tokens", json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


@asynccontextmanager
async def browser(env, api_token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client that signs in like the login form does and then sends the cookie."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=env.runtime.app), base_url="http://orch"
    ) as client:
        if api_token is not None:
            signed = await client.post("/dashboard/login", data={"token": api_token})
            assert signed.status_code == 303, signed.text
            client.headers["Cookie"] = f"{COOKIE}={api_token}"
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def waiting_rotation(env) -> str:
    env.worker.propagate = False
    created = await env.api.post("/v1/rotations", json=rotation_body(require_approval=True))
    assert created.status_code == 201, created.text
    rotation_id = str(created.json()["id"])

    async def watch_started() -> bool:
        view = (await env.api.get(f"/v1/rotations/{rotation_id}")).json()
        return bool(view["propagation"])

    await wait_until(watch_started)
    return rotation_id


async def test_sign_in_keeps_the_token_in_a_strict_httponly_cookie_only(embedded):
    viewer = await token(embedded, "watcher", "viewer")
    async with browser(embedded) as client:
        refused = await client.post("/dashboard/login", data={"token": viewer + "x"})
        assert refused.status_code == 401
        assert "Unknown or revoked API token" in refused.text
        assert viewer not in refused.text
        signed = await client.post(
            "/dashboard/login", data={"token": viewer, "next": "https://evil.example/"}
        )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/dashboard/rotations"  # never off-site
    cookie = signed.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/dashboard"):
        assert attribute in cookie
    assert "expires" not in cookie and "max-age" not in cookie  # gone with the browser
    assert signed.headers["content-security-policy"].startswith("default-src 'none'")


async def test_pages_need_a_session_and_a_poll_without_one_goes_to_sign_in(embedded):
    async with browser(embedded) as client:
        page = await client.get("/dashboard/rotations")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/dashboard/login?next=/dashboard/rotations")
        poll = await client.get(
            "/dashboard/rotations",
            params={"part": "rotations_table"},
            headers={"HX-Request": "true"},
        )
        assert poll.status_code == 401 and poll.headers["hx-redirect"] == "/dashboard/login"
        api = await client.get("/v1/rotations", headers={"Cookie": f"{COOKIE}=x"})
        assert api.status_code == 401  # the API itself takes bearer tokens only


async def test_the_rotation_page_shows_steps_gates_and_servers_from_the_api(embedded):
    rotation_id = await waiting_rotation(embedded)
    admin = embedded.runtime.settings.admin_token.get_secret_value()
    async with browser(embedded, admin) as client:
        listing = await client.get("/dashboard/rotations")
        assert listing.status_code == 200 and rotation_id[:8] in listing.text
        page = await client.get(f"/dashboard/rotations/{rotation_id}")
    assert page.status_code == 200, page.text
    text = page.text
    for title in (
        "Break replication with the partners",
        "Wait until the clients have the verification-off policy",
        "Update the certificate, one management server at a time",
        "Restore exactly the partnerships broken in step 1",
    ):
        assert title in text
    assert "Waiting for approval" in text and 'id="approve"' in text
    assert "laptop-1" in text  # the at-risk list, read through the API
    assert admin not in text


async def test_a_viewer_has_no_approve_button_and_the_api_refuses_its_approval(embedded):
    rotation_id = await waiting_rotation(embedded)
    viewer = await token(embedded, "watcher", "viewer")
    async with browser(embedded, viewer) as client:
        page = await client.get(f"/dashboard/rotations/{rotation_id}")
        assert "Waiting for approval" in page.text
        assert 'id="approve"' not in page.text and "cannot approve" in page.text
        # Forged by hand, with a valid CSRF token: the API (not the page) says no.
        forged = await client.post(
            f"/dashboard/rotations/{rotation_id}/approve",
            data={"csrf_token": csrf_of(page.text), "note": "me"},
            headers={"HX-Request": "true"},
        )
    assert forged.status_code == 200
    assert "needs the approver role" in forged.text
    view = (await embedded.api.get(f"/v1/rotations/{rotation_id}")).json()
    assert view["gates"]["approval"]["passed"] is False


async def test_an_approver_approves_from_the_page_and_the_api_records_it(embedded):
    rotation_id = await waiting_rotation(embedded)
    approver = await token(embedded, "cab-chair", "approver")
    async with browser(embedded, approver) as client:
        page = await client.get(f"/dashboard/rotations/{rotation_id}")
        answer = await client.post(
            f"/dashboard/rotations/{rotation_id}/approve",
            data={"csrf_token": csrf_of(page.text), "note": "CAB approved CHG0001"},
            headers={"HX-Request": "true"},
        )
    assert answer.status_code == 200 and "Approved." in answer.text
    assert "Waiting for approval" not in answer.text
    view = (await embedded.api.get(f"/v1/rotations/{rotation_id}")).json()
    assert view["gates"]["approval"]["approved_by"] == "cab-chair"
    assert view["gates"]["approval"]["note"] == "CAB approved CHG0001"


async def test_posts_without_the_csrf_token_or_from_another_origin_are_refused(embedded):
    rotation_id = await waiting_rotation(embedded)
    approver = await token(embedded, "cab-chair", "approver")
    async with browser(embedded, approver) as client:
        page = await client.get(f"/dashboard/rotations/{rotation_id}")
        url = f"/dashboard/rotations/{rotation_id}/approve"
        missing = await client.post(url, data={"note": "x"})
        wrong = await client.post(url, data={"note": "x", "csrf_token": "0" * 64})
        other_site = await client.post(
            url,
            data={"note": "x", "csrf_token": csrf_of(page.text)},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
    assert [r.status_code for r in (missing, wrong, other_site)] == [403, 403, 403]
    view = (await embedded.api.get(f"/v1/rotations/{rotation_id}")).json()
    assert view["gates"]["approval"]["passed"] is False


async def test_a_poll_of_an_unchanged_region_leaves_it_alone(embedded):
    rotation_id = await waiting_rotation(embedded)
    admin = embedded.runtime.settings.admin_token.get_secret_value()
    async with browser(embedded, admin) as client:
        page = await client.get(f"/dashboard/rotations/{rotation_id}")
        poll = re.search(r'id="live-rotation_actions"[^>]*hx-get="([^"]+)"', page.text)
        assert poll, "the actions region is not polled"
        url = poll.group(1).replace("&amp;", "&")
        same = await client.get(url, headers={"HX-Request": "true"})
        assert same.status_code == 204
        async with embedded.client(await token(embedded, "cab", "approver")) as cab:
            approved = await cab.post(f"/v1/rotations/{rotation_id}/approve", json={})
            assert approved.status_code == 200, approved.text
        changed = await client.get(url, headers={"HX-Request": "true"})
    assert changed.status_code == 200 and "Waiting for approval" not in changed.text


async def test_the_at_risk_csv_downloads_as_an_attachment(embedded):
    rotation_id = await waiting_rotation(embedded)
    viewer = await token(embedded, "watcher", "viewer")
    async with browser(embedded, viewer) as client:
        csv = await client.get(f"/dashboard/rotations/{rotation_id}/at-risk.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"].startswith("attachment;")
    assert csv.text.splitlines()[1:] == ["C1,laptop-1", "C2,laptop-2"]


async def test_a_campaign_waiting_for_the_next_wave_is_answered_by_an_approver_only(embedded):
    for name in ("site-c", "site-d"):
        assert (await embedded.api.post("/v1/sites", json=site_body(name))).status_code == 201
        made = await embedded.api.post("/v1/servers", json=server_body(f"{name}-s1", name))
        assert made.status_code == 201, made.text
    created = await embedded.api.post(
        "/v1/campaigns",
        json={
            "name": "ca-2026",
            "plan": {"waves": [["site-c"], ["site-d"]]},
            "certificate": {"format": "pkcs12", "data_b64": "AAAA", "password": "pfx-pass"},
            "approve_each_wave": True,
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]

    async def awaits_wave_two() -> bool:
        view = (await embedded.api.get(f"/v1/campaigns/{campaign_id}")).json()
        return view["state"] == "awaiting_approval"

    await wait_until(awaits_wave_two)
    viewer = await token(embedded, "watcher", "viewer")
    async with browser(embedded, viewer) as client:
        listing = await client.get("/dashboard/campaigns")
        assert "ca-2026" in listing.text and "wave approval" in listing.text
        decisions = await client.get("/dashboard/decisions")
        assert "ca-2026" in decisions.text
        page = await client.get(f"/dashboard/campaigns/{campaign_id}")
        assert "Waiting for an approver" in page.text and 'value="continue"' not in page.text
    approver = await token(embedded, "cab-chair", "approver")
    async with browser(embedded, approver) as client:
        page = await client.get(f"/dashboard/campaigns/{campaign_id}")
        assert 'value="continue"' in page.text
        answer = await client.post(
            f"/dashboard/campaigns/{campaign_id}/approve",
            data={"csrf_token": csrf_of(page.text), "decision": "continue", "note": "wave 1 ok"},
            headers={"HX-Request": "true"},
        )
    assert answer.status_code == 200 and "Answered: continue." in answer.text
    view = (await embedded.api.get(f"/v1/campaigns/{campaign_id}")).json()
    assert view["decision_waiting"] is None and view["current_wave"] == 2


async def test_a_paused_rotation_is_answered_with_a_reason_and_change_id_by_role(embedded):
    rotation_id = await waiting_rotation(embedded)
    embedded.clock.advance(14 * 86400)  # the wait's maximum: the rotation asks what to do

    async def paused() -> bool:
        view = (await embedded.api.get(f"/v1/rotations/{rotation_id}")).json()
        return view["state"] == "paused"

    await wait_until(paused)
    operator = await token(embedded, "ops", "operator")
    async with browser(embedded, operator) as client:
        page = (await client.get(f"/dashboard/rotations/{rotation_id}")).text
    assert "A decision is waiting" in page
    assert 'value="extend"' in page and 'value="abort"' in page
    assert 'value="proceed"' not in page and "needs the approver role" in page
    assert 'id="reason"' in page and 'id="change_id"' in page

    approver = await token(embedded, "cab-chair", "approver")
    async with browser(embedded, approver) as client:
        page = (await client.get(f"/dashboard/rotations/{rotation_id}")).text
        url = f"/dashboard/rotations/{rotation_id}/decide"
        form = {"csrf_token": csrf_of(page), "decision": "proceed", "change_id": "CHG0042"}
        refused = await client.post(url, data={**form, "reason": " "}, headers={"HX-Request": "1"})
        assert "a proceed decision needs a reason" in refused.text
        assert "A decision is waiting" in refused.text  # still there, to answer again
        answered = await client.post(
            url, data={**form, "reason": "two lab laptops, re-imaged"}, headers={"HX-Request": "1"}
        )
    assert "Decision recorded: proceed." in answered.text
    accepted = (await embedded.api.get(f"/v1/rotations/{rotation_id}")).json()["gates"][
        "orphan_risk"
    ]["accepted"]
    assert accepted["by"] == "cab-chair" and accepted["change_id"] == "CHG0042"
    assert accepted["reason"] == "two lab laptops, re-imaged"
