"""The `certrotate` client commands against a real certrotate (embedded stack) and the twin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from certrotate.cli import main
from tests.integration.cli.conftest import LiveCertrotate

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERTROTATE_API_URL", "CERTROTATE_API_TOKEN", "CERTROTATE_API_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def cli(live: LiveCertrotate, *args: str, token_file: str | None = None) -> Result:
    auth = ["--api", live.api_url, "--token-file", token_file or str(live.admin_token_file)]
    return CliRunner().invoke(main, [*args, *auth])


def show(live: LiveCertrotate, rotation_id: str) -> dict[str, Any]:
    result = cli(live, "status", rotation_id, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def start_rotation(live: LiveCertrotate, site: str, *options: str) -> str:
    bundle = live.issue_bundle(site)
    password = live.secret_file("bundle.pw", "s3cret-pass")
    result = cli(
        live, "rotate", "--site", site, "--bundle", str(bundle),
        "--password-file", str(password), *options,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_rotate_then_watch_to_completion(live):
    bundle = live.issue_bundle("site-a")
    password = live.secret_file("a.pw", "s3cret-pass")
    result = cli(
        live, "rotate", "--site", "site-a", "--bundle", str(bundle),
        "--password-file", str(password), "--idempotency-key", "chg-1001", "--change-id", "CHG1001",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rotation_id = result.stdout.strip()

    watched = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert watched.exit_code == 0, watched.output
    assert f"rotation {rotation_id} completed" in watched.stderr
    assert "restore_replication" in watched.stdout  # the final panel
    view = show(live, rotation_id)
    assert view["state"] == "completed" and view["change_id"] == "CHG1001"
    new = view["certificate"]["fingerprint_sha256"]
    assert [s["fingerprint_after"] for s in view["servers"]] == [new, new]
    assert live.twin_get("/twin/v1/ground-truth/orphans")["count"] == 0

    # The same idempotency key and body: the same rotation, nothing new.
    again = cli(
        live, "rotate", "--site", "site-a", "--bundle", str(bundle),
        "--password-file", str(password), "--idempotency-key", "chg-1001", "--change-id", "CHG1001",
    )  # fmt: skip
    assert again.exit_code == 0 and again.stdout.strip() == rotation_id
    assert "nothing new started" in again.stderr

    events = cli(live, "events", rotation_id, "--json")
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert types[0] == "RotationRequested" and "ReplicationRestored" in types
    assert "s3cret-pass" not in events.stdout
    listed = cli(live, "list", "--site", "site-a", "--state", "completed", "--json")
    assert rotation_id in [r["id"] for r in json.loads(listed.stdout)]


def test_a_wrong_keystore_password_is_refused_with_the_certificates_reason(live):
    bundle = live.issue_bundle("site-b")
    wrong = live.secret_file("wrong.pw", "not-the-password")
    result = cli(
        live, "rotate", "--site", "site-b", "--bundle", str(bundle), "--password-file", str(wrong)
    )
    assert result.exit_code == 1, result.output
    assert "Invalid request (422)" in result.stderr
    assert "password does not open it" in result.stderr
    assert "[code: wrong_password]" in result.stderr
    assert result.stdout == ""
    assert json.loads(cli(live, "list", "--site", "site-b", "--json").stdout) == []


def test_an_unknown_rotation_and_an_unreachable_api(live, closed_port):
    missing = cli(live, "status", "no-such-rotation")
    assert missing.exit_code == 1
    assert "Not found (404): no rotation 'no-such-rotation'" in missing.stderr
    down = CliRunner().invoke(
        main, ["list", "--api", f"http://127.0.0.1:{closed_port}", "--token", "x"]
    )
    assert down.exit_code == 3
    assert down.stderr.strip().splitlines()[-1] == (
        f"error: cannot reach the certrotate API at http://127.0.0.1:{closed_port}: "
        "connection refused — is `certrotate up` running?"
    )


def test_approval_gate_stops_the_watch_until_approved(live):
    rotation_id = start_rotation(live, "site-a", "--approval-required")
    waiting = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert waiting.exit_code == 5, waiting.output
    assert f"certrotate approve {rotation_id}" in waiting.stderr
    assert show(live, rotation_id)["gates"]["waiting_for"] == ["approval"]

    viewer = cli(live, "tokens", "create", "--name", "dashboard", "--role", "viewer")
    assert viewer.exit_code == 0
    viewer_file = live.secret_file("viewer.token", viewer.stdout.strip())
    refused = cli(live, "approve", rotation_id, token_file=str(viewer_file))
    assert refused.exit_code == 1
    assert "Forbidden (403)" in refused.stderr and "approver role" in refused.stderr

    # Another person approves: the token that requested a rotation may not approve it.
    own = cli(live, "approve", rotation_id, "--note", "CAB ok")
    assert own.exit_code == 1 and "cannot approve it" in own.stderr
    made = cli(live, "tokens", "create", "--name", "cab", "--role", "approver")
    cab_file = live.secret_file("cab.token", made.stdout.strip())
    approved = cli(live, "approve", rotation_id, "--note", "CAB ok", token_file=str(cab_file))
    assert approved.exit_code == 0, approved.output
    done = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert done.exit_code == 0, done.output
    assert show(live, rotation_id)["gates"]["approval"]["note"] == "CAB ok"


def test_clients_at_risk_stop_the_rotation_and_abort_compensates(live):
    # 90% is enough to pass the propagation gate; the offline 10% are then at risk.
    rotation_id = start_rotation(live, "site-c", "--threshold", "90")
    paused = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert paused.exit_code == 5, paused.output
    assert "awaits a decision" in paused.stderr
    view = show(live, rotation_id)
    assert view["pending_decision"]["kind"] == "orphan_risk"
    at_risk = view["gates"]["orphan_risk"]["at_risk"]
    assert at_risk == 5

    csv_out = cli(live, "at-risk", rotation_id, "--csv")
    assert csv_out.exit_code == 0, csv_out.output
    rows = csv_out.stdout.strip().splitlines()
    assert rows[0].startswith("uniqueId,computerName") and len(rows) == 1 + at_risk

    resumed = cli(live, "resume", rotation_id)
    assert resumed.exit_code == 1 and "use decide" in resumed.stderr
    no_reason = cli(live, "decide", rotation_id, "--decision", "abort")
    assert no_reason.exit_code == 2
    aborted = cli(live, "decide", rotation_id, "--decision", "abort", "--reason", "laptops away")
    assert aborted.exit_code == 0, aborted.output
    ended = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert ended.exit_code == 4, ended.output
    assert "ended compensated" in ended.stderr
    assert live.twin_get("/twin/v1/ground-truth/orphans")["count"] == 0


def test_inventory_commands(live):
    ca = live.secret_file("ca.pem", live.twin_get("/twin/v1/topology")["ca_certificate_pem"])
    site_args = [
        "sites", "add", "--name", "site-x", "--api-url", "https://sepm-x1:8446/sepm/api/v1",
        "--version", "14.3.9000", "--partner", "site-a", "--trust-pem", str(ca),
        "--driver", "manual",
    ]  # fmt: skip
    # A new site without its SEPM account is refused, with what to pass.
    bare = cli(live, *site_args)
    assert bare.exit_code == 1
    assert "a new site needs sepm_credentials" in bare.stderr
    assert "hint: pass the SEPM account: --username NAME --password-file FILE" in bare.stderr
    password = live.secret_file("sepm-x.pw", "x-account-pass")
    added = cli(live, *site_args, "--username", "svc-x", "--password-file", str(password))
    assert added.exit_code == 0, added.output
    assert "x-account-pass" not in added.output
    # Changing a site later needs no credentials again: the stored ones are kept.
    site_args[site_args.index("14.3.9000")] = "14.3.9100"
    updated = cli(live, *site_args)
    assert updated.exit_code == 0, updated.output
    site = json.loads(cli(live, "sites", "show", "site-x", "--json").stdout)
    assert site["credentials_set"] is True and site["version"] == "14.3.9100"
    assert site["trusted_certificates_count"] == 1 and site["host_ops"]["driver"] == "manual"
    assert "x-account-pass" not in json.dumps(site)

    server = cli(
        live, "servers", "add", "--name", "sepm-x1", "--site", "site-x", "--address", "10.1.2.3",
        "--hostname", "sepm-x1.corp", "--version", "14.3.9000", "--port", "8443=8443",
        "--port", "443=443", "--port", "8446=8446",
    )  # fmt: skip
    assert server.exit_code == 0, server.output
    servers = json.loads(cli(live, "servers", "list", "--site", "site-x", "--json").stdout)
    assert [(s["name"], s["ports"]) for s in servers] == [
        ("sepm-x1", {"8443": 8443, "443": 443, "8446": 8446})
    ]
    table = cli(live, "sites", "list")
    assert table.exit_code == 0 and "site-x" in table.stdout and "site-a" in table.stdout

    assert cli(live, "servers", "remove", "sepm-x1").exit_code == 0
    assert cli(live, "sites", "remove", "site-x").exit_code == 0
    gone = cli(live, "sites", "show", "site-x")
    assert gone.exit_code == 1 and "Not found (404)" in gone.stderr


def test_proceed_names_the_accepted_clients_and_completes(live):
    rotation_id = start_rotation(live, "site-c", "--threshold", "90", "--change-id", "CHG77")
    paused = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert paused.exit_code == 5, paused.output
    listed = cli(live, "at-risk", rotation_id, "--json")
    at_risk = {c["uniqueId"] for c in json.loads(listed.stdout)["clients"]}
    assert len(at_risk) == 5

    proceed = cli(
        live, "decide", rotation_id, "--decision", "proceed",
        "--reason", "laptops on leave, re-imaged on return", "--change-id", "CHG77",
    )  # fmt: skip
    assert proceed.exit_code == 0, proceed.output
    done = cli(live, "status", rotation_id, "--watch", "--interval", "0.2")
    assert done.exit_code == 0, done.output
    accepted = show(live, rotation_id)["gates"]["orphan_risk"]["accepted"]
    assert accepted["accepted_count"] == 5 and accepted["by"] == "admin"
    history = [
        json.loads(line)
        for line in cli(live, "events", rotation_id, "--json").stdout.split("\n")
        if line
    ]
    decision = next(e for e in history if e["type"] == "DecisionMade")
    assert decision["detail"]["accepted_list"]["count"] == 5
    named = cli(live, "at-risk", rotation_id, "--accepted", "--json")
    assert {c["uniqueId"] for c in json.loads(named.stdout)["clients"]} == at_risk
