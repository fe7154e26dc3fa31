"""Inputs at the edge of what the API documents, found by schemathesis: each answered with a
documented 4xx and its code, never a 500 (or a stream cut short)."""

from __future__ import annotations

import pytest

from tests.integration.orchestrator.support import rotation_body, site_body

pytestmark = pytest.mark.integration

BEYOND_64_BITS = str(2**63)


async def test_an_empty_idempotency_key_is_refused_not_a_server_error(embedded):
    for _ in range(2):  # the second one used to hit the unique index on "" (500)
        answer = await embedded.api.post(
            "/v1/rotations", json=rotation_body(), headers={"Idempotency-Key": ""}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_request"


async def test_ids_and_positions_beyond_64_bits_name_nothing(embedded):
    api = embedded.api
    replay = await api.post(f"/v1/dead-letters/{BEYOND_64_BITS}/replay")
    assert replay.status_code == 404 and replay.json()["code"] == "not_found", replay.text
    superscript = await api.post("/v1/dead-letters/²/replay")
    assert superscript.status_code == 404, superscript.text
    export = await api.get("/v1/audit/export", params={"after": BEYOND_64_BITS})
    assert export.status_code == 422 and export.json()["code"] == "invalid_request", export.text


async def test_a_body_naming_another_site_than_its_path_is_a_conflict(embedded):
    answer = await embedded.api.put("/v1/sites/site-z", json=site_body("site-a", ["site-b"]))
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "name_mismatch"


async def test_a_secret_overlap_must_be_a_number_not_a_boolean(embedded):
    await embedded.api.post("/v1/webhooks/sources", json={"name": "itsm"})
    answer = await embedded.api.post(
        "/v1/webhooks/sources/itsm/secrets", json={"keep_old_hours": False}
    )
    assert answer.status_code == 422, answer.text
