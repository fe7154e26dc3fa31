"""`certrotate webhooks sources ...`: what is sent, and that a secret is printed once, to stdout
only, and never by `list`."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.unit.cli.test_client_commands import FakeApi, run

pytestmark = pytest.mark.unit

SECRET = "whsec_c2VjcmV0LWJ5dGVzLWZvci10ZXN0cy0wMTIzNDU2Nzg5"


def source(**extra):
    return {
        "name": "pki", "description": "corporate PKI", "created_at": "2026-03-01T12:00:00Z",
        "created_by": "admin", "url": "/v1/webhooks/pki",
        "secrets": [{"id": "s1", "created_at": "2026-03-01T12:00:00Z", "expires_at": None,
                     "active": True}],
        **extra,
    }  # fmt: skip


def test_add_prints_the_secret_once_on_stdout():
    api = FakeApi(lambda r: httpx.Response(201, json=source(secret={"id": "s1", "secret": SECRET,
                                                                      "created_at": "x"})))  # fmt: skip
    result = run(api, "webhooks", "sources", "add", "pki", "--description", "corporate PKI")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == SECRET
    assert api.requests[0].url.path == "/v1/webhooks/sources"
    assert api.bodies() == [{"name": "pki", "description": "corporate PKI"}]


def test_list_shows_active_secret_counts_not_secrets():
    api = FakeApi(lambda r: httpx.Response(200, json={"items": [source()]}))
    result = run(api, "webhooks", "sources", "list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["name"] == "pki"
    table = run(api, "webhooks", "sources", "list")
    assert "pki" in table.stdout and "whsec_" not in table.stdout


def test_roll_sends_how_long_the_old_secret_stays_valid():
    api = FakeApi(lambda r: httpx.Response(201, json=source(secret={"id": "s2", "secret": SECRET,
                                                                      "created_at": "x"})))  # fmt: skip
    result = run(api, "webhooks", "sources", "roll", "pki", "--keep-old-hours", "2")
    assert result.exit_code == 0, result.output
    assert api.requests[0].url.path == "/v1/webhooks/sources/pki/secrets"
    assert api.bodies() == [{"keep_old_hours": 2.0}]
    assert SECRET in result.stdout


def test_remove_and_a_refusal_exits_1():
    api = FakeApi(lambda r: httpx.Response(204))
    assert run(api, "webhooks", "sources", "remove", "pki").exit_code == 0
    assert api.requests[0].method == "DELETE"
    missing = FakeApi(
        lambda r: httpx.Response(
            404,
            json={"type": "about:blank", "title": "Not found", "status": 404,
                  "detail": "no webhook source 'x'", "code": "unknown_source"},
            headers={"content-type": "application/problem+json"},
        )
    )  # fmt: skip
    result = run(missing, "webhooks", "sources", "remove", "x")
    assert result.exit_code == 1 and "unknown_source" in result.output


def test_subscriptions_add_sends_events_and_filters_and_prints_the_secret_once():
    created = {"id": "sub-1", "url": "https://itsm.example.com/hook", "secret": SECRET,
               "event_types": ["rotation.completed"], "site": None, "change_id": "CHG1",
               "description": "", "created_at": "2026-03-01T12:00:00Z", "created_by": "admin"}  # fmt: skip
    api = FakeApi(lambda r: httpx.Response(201, json=created))
    result = run(
        api, "subscriptions", "add", "https://itsm.example.com/hook",
        "--event", "rotation.completed", "--change-id", "CHG1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == SECRET
    assert api.bodies()[0]["event_types"] == ["rotation.completed"]
    assert api.bodies()[0]["change_id"] == "CHG1"
    everything = run(api, "subscriptions", "add", "https://itsm.example.com/hook")
    assert everything.exit_code == 0 and len(api.bodies()[1]["event_types"]) == 7


def test_subscription_deliveries_and_redeliver():
    item = {"id": 7, "event_type": "rotation.failed", "rotation_id": "rot-1", "status": "failed",
            "attempts": 9, "last_status_code": 503, "created_at": "2026-03-01T12:00:00Z"}  # fmt: skip
    api = FakeApi(lambda r: httpx.Response(200, json={"items": [item], "next_after": None})
                  if r.method == "GET" else httpx.Response(202, json=item))  # fmt: skip
    listed = run(api, "subscriptions", "deliveries", "sub-1", "--status", "failed")
    assert listed.exit_code == 0 and "rotation.failed" in listed.stdout
    assert api.requests[0].url.params["status"] == "failed"
    again = run(api, "subscriptions", "redeliver", "sub-1", "7")
    assert again.exit_code == 0
    assert api.requests[1].url.path == "/v1/subscriptions/sub-1/deliveries/7/redeliver"


def test_audit_export_writes_the_json_lines_it_gets():
    lines = '{"id":1,"action":"site.created"}\n{"id":2,"action":"token.revoked"}\n'
    api = FakeApi(lambda r: httpx.Response(200, text=lines,
                                           headers={"content-type": "application/x-ndjson"}))  # fmt: skip
    result = run(api, "audit", "export", "--action", "token.")
    assert result.exit_code == 0, result.output
    assert result.stdout == lines
    assert api.requests[0].url.path == "/v1/audit/export"
    assert api.requests[0].url.params["action"] == "token."
