"""The dashboard's sign-in is a way to try tokens too: its failures count against the same
per-address limit as the API's bearer tokens, and a refused address is refused there as well
(or the limit could be walked around through the login form)."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.entrypoints.dashboard.session import COOKIE
from tests.integration.orchestrator.harness import Embedded

pytestmark = pytest.mark.integration

GUESSER = "10.6.6.6"


def browser(env: Embedded, address: str) -> httpx.AsyncClient:
    assert env.runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=env.runtime.app, client=(address, 40000)),
        base_url="http://orch",
    )


async def test_guesses_through_the_login_form_are_limited_like_the_apis(embedded):
    env = embedded
    limit = env.runtime.settings.auth_failure_limit
    window = env.runtime.settings.auth_failure_window_seconds
    wall = [1_800_000_000.0]
    env.runtime.app.state.deps.wall_clock = lambda: wall[0]
    made = await env.api.post("/v1/tokens", json={"name": "watcher", "role": "viewer"})
    viewer = made.json()["token"]
    async with browser(env, GUESSER) as guesser:
        for n in range(limit):
            wrong = await guesser.post("/dashboard/login", data={"token": f"crt_guess-{n}"})
            assert wrong.status_code == 401, wrong.text
        refused = await guesser.post("/dashboard/login", data={"token": viewer})
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == str(int(window))
        assert "try again in" in refused.text and viewer not in refused.text
        assert COOKIE not in refused.headers.get("set-cookie", "")
        # The API refuses the address too: one count.
        api = await guesser.get("/v1/rotations", headers={"Authorization": f"Bearer {viewer}"})
        assert api.status_code == 429
    # Another address signs in.
    async with browser(env, "10.7.7.7") as other:
        signed = await other.post("/dashboard/login", data={"token": viewer})
        assert signed.status_code == 303
    wall[0] += window
    async with browser(env, GUESSER) as guesser:
        assert (await guesser.post("/dashboard/login", data={"token": viewer})).status_code == 303


async def test_a_forged_session_cookie_is_a_guess_too(embedded):
    env = embedded
    limit = env.runtime.settings.auth_failure_limit
    async with browser(env, GUESSER) as guesser:
        for n in range(limit):
            page = await guesser.get(
                "/dashboard/rotations", headers={"Cookie": f"{COOKIE}=crt_guess-{n}"}
            )
            assert page.status_code == 303  # back to the sign-in
        api = await guesser.get("/v1/rotations", headers={"Authorization": "Bearer crt_more"})
    assert api.status_code == 429
