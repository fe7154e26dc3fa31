"""`certrotate campaign`: the requests it sends and what it shows of the answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from certrotate.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERTROTATE_API_URL", "CERTROTATE_API_TOKEN", "CERTROTATE_API_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def campaign_view(state: str = "running", decision: dict[str, Any] | None = None) -> dict:
    return {
        "id": "camp-1", "name": "ca-2026", "state": state, "current_wave": 1, "waves": 2,
        "sites_by_state": {"running": 1, "pending": 2}, "failures": 0, "tolerated_failures": 0,
        "decision_waiting": decision,
        "plan": [
            {"wave": 1, "sites": [{"site": "site-c", "status": "running", "rotation_id": "rot-9",
                                   "farm": "site-c", "note": None}]},
            {"wave": 2, "sites": [{"site": "site-a", "status": "pending", "rotation_id": None,
                                   "farm": "site-a", "note": None},
                                  {"site": "site-b", "status": "pending", "rotation_id": None,
                                   "farm": "site-a", "note": None}]},
        ],
    }  # fmt: skip


class Api:
    def __init__(self, answer: httpx.Response) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer


def run(api: Api, *args: str) -> Result:
    return CliRunner().invoke(
        main, [*args, "--token", "tok-123"], obj={"api_transport": httpx.MockTransport(api)}
    )


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "new.p12"
    path.write_bytes(b"\x30\x82\x09\x99" + b"\x01" * 32)
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text("s3cret-pass\n")
    return path


def test_create_sends_the_generated_plan_the_cap_and_the_bundle(bundle, password_file):
    api = Api(httpx.Response(201, json=campaign_view()))
    result = run(
        api, "campaign", "create", "ca-2026", "--sites", "site-c, site-a,site-b", "--canary",
        "1", "--wave-size", "2", "--bundle", str(bundle), "--password-file", str(password_file),
        "--max-concurrent", "3", "--max-failures", "1", "--approve-each-wave",
        "--idempotency-key", "k-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "camp-1"
    (request,) = api.requests
    assert request.url.path == "/v1/campaigns"
    assert request.headers["Idempotency-Key"] == "k-1"
    body = json.loads(request.content)
    assert body["plan"] == {"sites": ["site-c", "site-a", "site-b"], "canary": 1, "wave_size": 2}
    assert (body["max_concurrent"], body["max_failures"], body["approve_each_wave"]) == (3, 1, True)
    assert body["certificate"]["format"] == "pkcs12"
    assert body["certificate"]["password"] == "s3cret-pass"


def test_create_with_explicit_waves_and_a_site_of_its_own(bundle, password_file):
    api = Api(httpx.Response(201, json=campaign_view()))
    result = run(
        api, "campaign", "create", "ca", "--wave", "site-c", "--wave", "site-a,site-b",
        "--site-bundle", f"site-c={bundle}", "--password-file", str(password_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(api.requests[0].content)
    assert body["plan"] == {"waves": [["site-c"], ["site-a", "site-b"]]}
    assert set(body["certificates"]) == {"site-c"}
    assert "certificate" not in body


def test_create_without_a_plan_or_with_both_is_a_usage_error(bundle):
    api = Api(httpx.Response(201, json=campaign_view()))
    assert run(api, "campaign", "create", "x", "--bundle", str(bundle)).exit_code == 2
    both = run(
        api, "campaign", "create", "x", "--wave", "a", "--sites", "a", "--bundle", str(bundle)
    )
    assert both.exit_code == 2
    assert api.requests == []


def test_status_shows_every_site_by_wave_and_exits_5_when_a_decision_waits():
    decision = {"kind": "failure_budget", "wave": 0, "reason": "2 rotation(s) failed"}
    api = Api(httpx.Response(200, json=campaign_view("halted", decision)))
    result = run(api, "campaign", "status", "camp-1")
    assert result.exit_code == 5
    assert "halted" in result.stdout and "2 rotation(s) failed" in result.stdout
    for site in ("site-a", "site-b", "site-c", "rot-9"):
        assert site in result.stdout
    running = run(Api(httpx.Response(200, json=campaign_view())), "campaign", "status", "camp-1")
    assert running.exit_code == 0


def test_approve_sends_the_decision_and_cancel_needs_a_reason():
    api = Api(httpx.Response(200, json=campaign_view()))
    result = run(api, "campaign", "approve", "camp-1", "--decision", "abort", "--note", "stop")
    assert result.exit_code == 0, result.output
    assert api.requests[0].url.path == "/v1/campaigns/camp-1/approve"
    assert json.loads(api.requests[0].content) == {"decision": "abort", "note": "stop"}
    assert run(api, "campaign", "cancel", "camp-1").exit_code == 2
    assert run(api, "campaign", "cancel", "camp-1", "--reason", "CA").exit_code == 0
    assert json.loads(api.requests[-1].content) == {"reason": "CA"}


def test_sites_add_sends_its_tags_and_sites_list_shows_them():
    api = Api(httpx.Response(201, json={"name": "emea-1"}))
    result = run(
        api, "sites", "add", "--name", "emea-1", "--api-url", "https://sepm:8446/sepm/api/v1",
        "--version", "14.3.9000", "--driver", "manual", "--tag", "emea", "--tag", "prod",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(api.requests[0].content)["tags"] == ["emea", "prod"]
    listed = Api(httpx.Response(200, json={"items": [
        {"name": "emea-1", "version": "14.3", "api_url": "u", "replication_partners": [],
         "servers": [], "host_ops": {"driver": "manual"}, "credentials_set": True,
         "tags": ["emea", "prod"]}]}))  # fmt: skip
    result = run(listed, "sites", "list")
    assert result.exit_code == 0, result.output
    assert "emea, prod" in result.stdout


def test_create_by_tag_sends_the_tag_as_a_target(bundle, password_file):
    api = Api(httpx.Response(201, json=campaign_view()))
    result = run(
        api, "campaign", "create", "emea", "--tag", "emea", "--tag", "apac", "--canary", "2",
        "--bundle", str(bundle), "--password-file", str(password_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(api.requests[0].content)["plan"]
    assert plan == {"sites": ["tag:emea", "tag:apac"], "canary": 2, "wave_size": 5}


def test_sites_add_and_campaign_create_send_their_maintenance_windows(bundle, password_file):
    api = Api(httpx.Response(201, json={"name": "tokyo-1"}))
    result = run(
        api, "sites", "add", "--name", "tokyo-1", "--api-url", "https://sepm:8446/sepm/api/v1",
        "--version", "14.3.9000", "--driver", "manual", "--window-cron", "0 2 * * *",
        "--window-minutes", "60", "--window-tz", "Asia/Tokyo",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(api.requests[0].content)["maintenance_window"] == {
        "cron": "0 2 * * *", "duration_minutes": 60, "timezone": "Asia/Tokyo"
    }  # fmt: skip
    api = Api(httpx.Response(201, json=campaign_view()))
    result = run(
        api, "campaign", "create", "w", "--sites", "a,b", "--bundle", str(bundle),
        "--password-file", str(password_file), "--window-cron", "0 22 * * 6",
        "--window-minutes", "240",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(api.requests[0].content)
    assert body["window"] == {"cron": "0 22 * * 6", "duration_minutes": 240, "timezone": "UTC"}
    assert "maintenance_window" not in body["options"]  # the swap follows each site's window
    half = run(api, "campaign", "create", "w", "--sites", "a", "--bundle", str(bundle),
               "--password-file", str(password_file), "--window-cron", "0 22 * * 6")  # fmt: skip
    assert half.exit_code == 2 and "--window-minutes" in half.output


def progressed_view(state: str = "running") -> dict:
    view = campaign_view(state)
    view["plan"][0]["sites"][0]["clients"] = {
        "step": "await_disable_propagation", "total": 200, "reached": 190, "pending": 10,
        "at_risk": 3, "observed_at": "2026-11-30T06:00:00+00:00",
    }  # fmt: skip
    view["progress"] = {
        "clients": {"total": 200, "reached": 190, "pending": 10, "at_risk": 3,
                    "orphaned_outside_risk": 0, "sites_reporting": 1},
        "forecast_end": "2026-12-14T06:00:00+00:00",
        "decisions_waiting": [
            {"scope": "rotation", "site": "site-c", "rotation_id": "rot-9", "kind": "orphan_risk",
             "reason": "3 clients would be cut off by the swap (budget 0)",
             "options": ["extend", "proceed", "abort"]},
        ],
    }  # fmt: skip
    return view


def test_the_live_view_shows_sums_forecast_sites_and_decisions():
    from rich.console import Console

    from certrotate.client.campaign_view import render_campaign

    console = Console(record=True, width=140, color_system=None)
    console.print(render_campaign(progressed_view()))
    text = console.export_text()
    assert "camp-1 ca-2026: running, wave 1/2" in text
    assert "190/200 clients reached · 10 pending · 3 at risk" in text
    assert "forecast end 2026-12-14 06:00:00 UTC" in text
    row = next(line for line in text.splitlines() if "site-c" in line and "rot-9" in line)
    assert "190/200" in row and "3 at risk" in row
    assert "site-c (rot-9) orphan_risk: 3 clients would be cut off" in text
    assert "certrotate decide rot-9 --decision extend|proceed|abort" in text
    before = render_campaign(campaign_view())  # a view without progress yet still renders
    console.print(before)
    assert "forecast end: after the first rotation completes" in console.export_text()


def test_status_watch_follows_until_the_campaign_ends():
    answers = iter([progressed_view(), progressed_view(), progressed_view("completed")])
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=next(answers))

    result = run(handler, "campaign", "status", "camp-1", "--watch", "--interval", "0.05")  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert len(requests) == 3
    # Off a terminal: one line per change, then the final picture and how it ended.
    assert result.stdout.count("ca-2026: running") == 1
    assert "ca-2026: completed" in result.stdout
    assert "campaign camp-1 completed" in result.stderr


def test_status_watch_stops_with_5_when_the_campaign_waits_for_someone():
    halted = progressed_view("halted")
    halted["decision_waiting"] = {"kind": "failure_budget", "wave": 0, "reason": "2 failed",
                                  "since": "2026-11-30T06:00:00Z"}  # fmt: skip
    api = Api(httpx.Response(200, json=halted))
    result = run(api, "campaign", "status", "camp-1", "--watch", "--interval", "0.05")
    assert result.exit_code == 5, result.output
    assert "certrotate campaign approve camp-1" in result.stderr


def test_sites_tag_adds_and_removes_tags_without_resending_the_site():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"name": "emea-1", "tags": ["emea", "old"]})
        return httpx.Response(200, json={"name": "emea-1", **json.loads(request.content)})

    result = run(handler, "sites", "tag", "emea-1", "--add", "prod", "--remove", "old")  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    put = requests[-1]
    assert (put.method, put.url.path) == ("PUT", "/v1/sites/emea-1/tags")
    assert json.loads(put.content) == {"tags": ["emea", "prod"]}
    assert "emea, prod" in result.stdout
