"""`certrotate dlq list|replay` against a mock API: what it asks and what it shows."""

from __future__ import annotations

import httpx
import pytest

from tests.unit.cli.test_client_commands import FakeApi, problem, run

pytestmark = pytest.mark.unit

LETTER = {
    "id": "7", "rotation_id": "rot-1", "service": "certificates", "message_id": "m-1",
    "message_type": "SetCertificateVerification", "idempotency_key": "rot-1:disable:1",
    "topic": "certrotate.certificates.commands", "partition": 0, "offset": 41, "attempts": 5,
    "error": "KeyError: 'groups'", "reported_at": "2026-01-05T09:00:00Z", "replayed_at": None,
    "replayed_by": None,
}  # fmt: skip


def test_dlq_list_shows_each_parked_message_with_its_rotation_and_error():
    api = FakeApi(lambda r: httpx.Response(200, json={"items": [LETTER]}))
    result = run(api, "dlq", "list", "--rotation", "rot-1")
    assert result.exit_code == 0, result.output
    assert "SetCertificateVerification" in result.output and "rot-1" in result.output
    assert "KeyError: 'groups'" in result.output
    assert api.requests[0].url.path == "/v1/dead-letters"
    assert api.requests[0].url.params["rotation_id"] == "rot-1"
    assert api.requests[0].url.params["status"] == "parked"


def test_dlq_replay_posts_and_says_where_the_message_went():
    replayed = {**LETTER, "replayed_at": "2026-01-05T10:00:00Z", "replayed_by": "ops"}
    api = FakeApi(lambda r: httpx.Response(200, json=replayed))
    result = run(api, "dlq", "replay", "7")
    assert result.exit_code == 0, result.output
    assert api.requests[0].method == "POST"
    assert api.requests[0].url.path == "/v1/dead-letters/7/replay"
    assert "re-published to certrotate.certificates.commands" in result.output


def test_a_second_replay_is_refused_with_the_apis_reason():
    api = FakeApi(
        lambda r: problem(409, "Conflict", "dead letter 7 was already replayed",
                          code="already_replayed")
    )  # fmt: skip
    result = run(api, "dlq", "replay", "7")
    assert result.exit_code != 0
    assert "already replayed" in result.output
