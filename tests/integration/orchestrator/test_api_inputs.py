"""Bad input is refused loudly, with the field or rule named, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from orchestrator.adapters.orm import sagas
from tests.integration.orchestrator.support import rotation_body, server_body

pytestmark = pytest.mark.integration


async def count_sagas(env) -> int:
    async with env.runtime.uow() as uow:
        return (await uow.session.execute(select(func.count()).select_from(sagas))).scalar_one()


async def test_a_typo_in_the_options_is_refused_naming_the_field(embedded):
    env = embedded
    typo = await env.api.post("/v1/rotations", json=rotation_body(require_aproval=True))
    assert typo.status_code == 422, typo.text
    assert typo.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in typo.json()["errors"]] == ["options.require_aproval"]
    nested = await env.api.post("/v1/rotations", json=rotation_body(retry={"max_attempt": 3}))
    assert nested.status_code == 422
    assert "options.retry.max_attempt" in nested.json()["detail"]
    window = await env.api.post(
        "/v1/rotations",
        json=rotation_body(
            maintenance_window={"cron": "0 22 * * *", "duration_minutes": 60, "timzone": "UTC"}
        ),
    )
    assert window.status_code == 422
    assert "options.maintenance_window.timzone" in window.json()["detail"]
    assert await count_sagas(env) == 0


async def test_a_window_that_never_opens_is_refused(embedded):
    env = embedded
    for cron in ("0 0 30 2 *", "0 0 31 4 *"):
        never = await env.api.post(
            "/v1/rotations",
            json=rotation_body(maintenance_window={"cron": cron, "duration_minutes": 60}),
        )
        assert never.status_code == 422, never.text
        assert never.json()["code"] == "invalid_window"
        assert "does not open" in never.json()["detail"]
    assert await count_sagas(env) == 0
    yearly = await env.api.post(
        "/v1/rotations",
        json=rotation_body(maintenance_window={"cron": "0 22 1 1 *", "duration_minutes": 60}),
    )
    assert yearly.status_code == 201, yearly.text


async def test_preflight_checks_the_names_clients_use_not_the_internal_address(embedded):
    env = embedded
    created = await env.api.post("/v1/rotations", json=rotation_body())
    assert created.status_code == 201, created.text
    sent = env.certificates.state.requests[-1]["body"]
    assert sent["hostnames"] == ["sepm-a1.corp", "sepm-a2.corp"]


async def test_a_server_without_its_sepm_tls_ports_is_refused(embedded):
    env = embedded
    for missing in ("8443", "443", "8446"):
        body = server_body("sepm-a3")
        del body["ports"][missing]
        refused = await env.api.post("/v1/servers", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "tls_ports_missing"
        assert missing in refused.json()["detail"]
    bad_port = server_body("sepm-a3")
    bad_port["ports"]["8443"] = 70000
    assert (await env.api.post("/v1/servers", json=bad_port)).status_code == 422
    unknown = server_body("sepm-a3")
    unknown["ports"]["9999"] = 9999
    assert (await env.api.post("/v1/servers", json=unknown)).status_code == 422
    with_8445 = server_body("sepm-a3")
    with_8445["ports"]["8445"] = 18445
    assert (await env.api.post("/v1/servers", json=with_8445)).status_code == 201
    assert (await env.api.get("/v1/servers/sepm-a3")).json()["ports"]["8445"] == 18445
