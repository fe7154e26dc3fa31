"""The CLI's handling of the API's answers: exit codes, messages, request bodies.

The API is an httpx.MockTransport: these tests check what our commands do with each kind of
answer (the real API is exercised in tests/integration/cli).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from certrotate.cli import main

pytestmark = pytest.mark.unit

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERTROTATE_API_URL", "CERTROTATE_API_TOKEN", "CERTROTATE_API_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


class FakeApi:
    """Records requests; answers with the handler given."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def run(api: FakeApi | None, *args: str, token: bool = True) -> Result:
    obj = {"api_transport": httpx.MockTransport(api)} if api else {}
    extra = ["--token", "tok-123"] if token else []
    return CliRunner().invoke(main, [*args, *extra], obj=obj)


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def view(state: str = "running", **extra: Any) -> dict[str, Any]:
    return {
        "id": "rot-1",
        "site": "site-a",
        "state": state,
        "current_step": {"name": "await_disable_propagation", "number": 3, "title": "Wait"},
        "reason": None,
        "gates": {"waiting_for": []},
        "propagation": [
            {
                "step": "await_disable_propagation",
                "outcome": "waiting",
                "percent": 42.0,
                "reached": 42,
                "total": 100,
                "pending_online": 50,
                "pending_offline": 8,
            },
        ],
        "servers": [],
        "pending_decision": None,
        "hold": {"paused": False, "reason": None},
        **extra,
    }


@pytest.fixture
def pkcs12_file(tmp_path: Path) -> Path:
    path = tmp_path / "new-cert.p12"
    path.write_bytes(b"\x30\x82\x09\x99" + b"\x01" * 64)
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text("s3cret-pass\n")
    return path


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json=view())


# --- errors and exit codes ---------------------------------------------------------------


def test_a_refusal_prints_title_detail_and_code_and_exits_1(pkcs12_file, password_file):
    api = FakeApi(
        lambda r: problem(
            422, "Invalid request", "the keystore password is wrong", code="wrong_password"
        )
    )
    result = run(
        api, "rotate", "--site", "site-a", "--bundle", str(pkcs12_file),
        "--password-file", str(password_file),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Invalid request (422): the keystore password is wrong" in result.stderr
    assert "wrong_password" in result.stderr
    assert result.stdout == ""


def test_field_errors_are_listed(pkcs12_file, password_file):
    errors = [{"field": "options.stale_horizon_days", "message": "must be > 0"}]
    api = FakeApi(lambda r: problem(422, "Invalid request", "bad options", errors=errors))
    result = run(api, "tokens", "create", "--name", "x", "--role", "viewer")
    assert result.exit_code == 1
    assert "options.stale_horizon_days: must be > 0" in result.stderr


def test_a_server_error_exits_3(pkcs12_file):
    api = FakeApi(lambda r: problem(502, "Upstream service failed", "certificates is down"))
    result = run(api, "status", "rot-1")
    assert result.exit_code == 3
    assert "certificates is down" in result.stderr


def test_an_unreachable_api_exits_3_with_a_hint():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = run(FakeApi(refuse), "list", "--api", "http://127.0.0.1:9")
    assert result.exit_code == 3
    # The last line (the one before warns about the --token these tests pass).
    assert result.stderr.strip().splitlines()[-1] == (
        "error: cannot reach the certrotate API at http://127.0.0.1:9: connection refused "
        "— is `certrotate up` running?"
    )


def test_no_token_is_a_usage_error_and_nothing_is_sent():
    api = FakeApi(created)
    result = run(api, "status", "rot-1", token=False)
    assert result.exit_code == 2
    assert "no API token" in result.stderr
    assert api.requests == []


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    api = FakeApi(lambda r: httpx.Response(200, json=view()))
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert run(api, "status", "rot-1", "--token-file", str(token_file), token=False).exit_code == 0
    monkeypatch.setenv("CERTROTATE_API_TOKEN", "from-env")
    assert run(api, "status", "rot-1", token=False).exit_code == 0
    assert [r.headers["authorization"] for r in api.requests] == [
        "Bearer from-file", "Bearer from-env",
    ]  # fmt: skip


def test_the_api_url_comes_from_the_environment(monkeypatch):
    api = FakeApi(lambda r: httpx.Response(200, json=view()))
    monkeypatch.setenv("CERTROTATE_API_URL", "http://certrotate.example:9000/")
    assert run(api, "status", "rot-1").exit_code == 0
    assert str(api.requests[0].url) == "http://certrotate.example:9000/v1/rotations/rot-1"


# --- rotate ------------------------------------------------------------------------------


def test_rotate_sends_the_bundle_and_password_and_prints_only_the_id(pkcs12_file, password_file):
    api = FakeApi(created)
    result = run(
        api, "rotate", "--site", "site-a", "--bundle", str(pkcs12_file),
        "--password-file", str(password_file), "--idempotency-key", "chg-42",
        "--change-id", "CHG0042", "--approval-required", "--stale-horizon-days", "14",
        "--window-cron", "0 22 * * 1-5", "--window-minutes", "120",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "rot-1\n"
    request = api.requests[0]
    assert request.headers["idempotency-key"] == "chg-42"
    body = api.bodies()[0]
    assert body["certificate"] == {
        "format": "pkcs12",
        "data_b64": base64.b64encode(pkcs12_file.read_bytes()).decode(),
        "password": "s3cret-pass",
    }
    assert body["change_id"] == "CHG0042"
    assert body["options"] == {
        "require_approval": True,
        "stale_horizon_days": 14.0,
        "maintenance_window": {"cron": "0 22 * * 1-5", "duration_minutes": 120, "timezone": "UTC"},
    }
    assert "s3cret-pass" not in result.output


def test_a_password_is_never_taken_from_the_command_line(pkcs12_file):
    api = FakeApi(created)
    result = run(api, "rotate", "--site", "a", "--bundle", str(pkcs12_file), "--password", "x")
    assert result.exit_code == 2
    assert api.requests == []


def test_a_keystore_without_password_file_off_a_terminal_is_a_usage_error(pkcs12_file):
    api = FakeApi(created)
    result = run(api, "rotate", "--site", "site-a", "--bundle", str(pkcs12_file))
    assert result.exit_code == 2
    assert "pkcs12 keystore password is needed: pass --password-file" in result.stderr
    assert api.requests == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("cert.bin", b"\xfe\xed\xfe\xed\x00\x00\x00\x02", "jks"),
        ("cert.keystore", b"\x30\x82\x01\x00", "jks"),
        ("cert.pfx", b"\x30\x82\x01\x00", "pkcs12"),
        ("cert.der", b"\x30\x82\x01\x00", "pkcs12"),
        ("cert.p12", b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
         b"-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n", "pem"),
    ],
)  # fmt: skip
def test_the_format_is_read_from_the_content_then_the_extension(
    tmp_path, password_file, name, content, expected
):
    bundle = tmp_path / name
    bundle.write_bytes(content)
    api = FakeApi(created)
    result = run(
        api, "rotate", "--site", "a", "--bundle", str(bundle), "--password-file", str(password_file)
    )
    assert result.exit_code == 0, result.output
    assert api.bodies()[0]["certificate"]["format"] == expected


def test_an_unrecognisable_bundle_asks_for_format(tmp_path):
    bundle = tmp_path / "cert.txt"
    bundle.write_bytes(b"hello")
    result = run(FakeApi(created), "rotate", "--site", "a", "--bundle", str(bundle))
    assert result.exit_code == 2
    assert "pass --format pkcs12|jks|pem" in result.stderr


def test_a_pem_certificate_without_its_key_is_a_usage_error_and_key_is_sent(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n")
    api = FakeApi(created)
    result = run(api, "rotate", "--site", "a", "--bundle", str(cert))
    assert result.exit_code == 2 and "--key FILE" in result.stderr
    key = tmp_path / "key.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n")
    result = run(api, "rotate", "--site", "a", "--bundle", str(cert), "--key", str(key))
    assert result.exit_code == 0, result.output
    upload = api.bodies()[0]["certificate"]
    assert upload["format"] == "pem" and "password" not in upload
    assert base64.b64decode(upload["key_b64"]) == key.read_bytes()


def test_a_budget_needs_a_reason(pkcs12_file, password_file):
    api = FakeApi(created)
    args = ["rotate", "--site", "a", "--bundle", str(pkcs12_file)]
    args += ["--password-file", str(password_file), "--orphan-risk-budget", "3"]
    result = run(api, *args)
    assert result.exit_code == 2 and "needs --reason" in result.stderr
    result = run(api, *args, "--reason", "lab machines")
    assert result.exit_code == 0
    body = api.bodies()[0]
    assert body["options"]["orphan_risk_budget"] == 3
    assert body["orphan_risk_budget_reason"] == "lab machines"


def test_a_replayed_idempotency_key_says_nothing_new_started(pkcs12_file, password_file):
    api = FakeApi(lambda r: httpx.Response(200, json=view()))
    result = run(
        api, "rotate", "--site", "a", "--bundle", str(pkcs12_file),
        "--password-file", str(password_file), "--idempotency-key", "k",
    )  # fmt: skip
    assert result.exit_code == 0 and result.stdout == "rot-1\n"
    assert "nothing new started" in result.stderr


# --- watching ----------------------------------------------------------------------------


def sequence(*views: dict[str, Any]) -> Handler:
    remaining: Iterator[dict[str, Any]] = iter(views)
    last: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        last[:] = [next(remaining, last[0] if last else views[-1])]
        return httpx.Response(200, json=last[0])

    return answer


@pytest.mark.parametrize(
    ("final", "code", "message"),
    [
        (view("completed"), 0, "rotation rot-1 completed"),
        (view("compensated", reason="install failed on sepm-a2"), 4,
         "ended compensated: install failed on sepm-a2"),
        (view("failed", reason="rollback failed"), 4, "ended failed"),
        (view("paused", pending_decision={"kind": "orphan_risk", "reason": "3 clients at risk",
                                          "options": ["extend", "proceed", "abort"]}), 5,
         "certrotate decide rot-1 --decision extend|proceed|abort"),
        (view("paused", hold={"paused": True, "reason": "change freeze"}), 5,
         "certrotate resume rot-1"),
        (view("running", gates={"waiting_for": ["approval"]}), 5, "certrotate approve rot-1"),
    ],
)  # fmt: skip
def test_status_watch_ends_with_the_rotations_outcome(final, code, message):
    api = FakeApi(sequence(view(), view(), final))
    result = run(api, "status", "rot-1", "--watch", "--interval", "0.05")
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert len(api.requests) == 3
    # Off a terminal, one line per change, then the final picture.
    assert "42.0%" in result.stdout and "gates" in result.stdout


def test_status_watch_json_prints_one_object_per_change():
    api = FakeApi(sequence(view(), view(), view("completed")))
    result = run(api, "status", "rot-1", "--watch", "--json", "--interval", "0.05")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["state"] for line in lines] == ["running", "completed"]


def test_rotate_wait_follows_to_the_end(pkcs12_file, password_file):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json=view())
        return httpx.Response(200, json=view("compensated", reason="install failed"))

    result = run(
        FakeApi(answer), "rotate", "--site", "a", "--bundle", str(pkcs12_file),
        "--password-file", str(password_file), "--wait", "--interval", "0.05",
    )  # fmt: skip
    assert result.exit_code == 4
    assert result.stdout == "rot-1\n"
    assert "ended compensated: install failed" in result.stderr


def test_events_follow_prints_each_event_once_until_the_end():
    history: list[dict[str, Any]] = [
        {"seq": 1, "at": "2026-01-01T00:00:00Z", "kind": "command", "type": "InspectSite",
         "step": "inspect", "actor": None, "detail": {"site": "site-a"}},
        {"seq": 2, "at": "2026-01-01T00:00:01Z", "kind": "event", "type": "SiteInspected",
         "step": "inspect", "actor": None, "detail": {}},
    ]  # fmt: skip
    polls = {"n": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            after = int(request.url.params["after"])
            visible = history[: polls["n"]]
            return httpx.Response(
                200,
                json={"items": [e for e in visible if int(e["seq"]) > after], "next_after": None},
            )
        polls["n"] += 1
        return httpx.Response(200, json=view("completed" if polls["n"] >= 2 else "running"))

    result = run(FakeApi(answer), "events", "rot-1", "--follow", "--interval", "0.05")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "InspectSite" in lines[0] and "SiteInspected" in lines[1]


# --- lists, decisions, inventory ---------------------------------------------------------


def test_list_follows_the_cursor_across_pages():
    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        item = dict(view(), id="second" if cursor else "first")
        return httpx.Response(200, json={"items": [item], "next_cursor": None if cursor else "c2"})

    api = FakeApi(answer)
    result = run(api, "list", "--state", "running", "--json")
    assert result.exit_code == 0
    assert [r["id"] for r in json.loads(result.stdout)] == ["first", "second"]
    assert all(r.url.params["state"] == "running" for r in api.requests)


@pytest.mark.parametrize(
    ("command", "path"),
    [(["sites", "list"], "/v1/sites"), (["servers", "list"], "/v1/servers"),
     (["tokens", "list"], "/v1/tokens"), (["tasks"], "/v1/tasks")],
)  # fmt: skip
def test_inventory_tokens_and_tasks_lists_follow_the_cursor_across_pages(command, path):
    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        item = {"name": "second" if cursor else "first", "task_id": "T2" if cursor else "T1"}
        return httpx.Response(200, json={"items": [item], "next_cursor": None if cursor else "c2"})

    api = FakeApi(answer)
    result = run(api, *command, "--json")
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == ["first", "second"]
    assert [r.url.path for r in api.requests] == [path, path]
    assert api.requests[1].url.params["cursor"] == "c2"


def test_decide_proceed_needs_a_reason_before_anything_is_sent():
    api = FakeApi(lambda r: httpx.Response(200, json=view()))
    result = run(api, "decide", "rot-1", "--decision", "proceed")
    assert result.exit_code == 2 and "needs --reason" in result.stderr
    assert api.requests == []
    result = run(
        api, "decide", "rot-1", "--decision", "proceed", "--reason", "lab PCs",
        "--change-id", "CHG1",
    )  # fmt: skip
    assert result.exit_code == 0
    assert api.bodies() == [{"decision": "proceed", "reason": "lab PCs", "change_id": "CHG1"}]


def test_an_action_the_rotation_cannot_take_exits_1_with_the_reason():
    api = FakeApi(
        lambda r: problem(409, "Conflict", "the rotation is not paused", code="action_not_possible")
    )
    result = run(api, "resume", "rot-1")
    assert result.exit_code == 1
    assert "Conflict (409): the rotation is not paused [code: action_not_possible]" in result.stderr


def test_sites_add_reads_passwords_from_files_only(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    pw = tmp_path / "sepm.pw"
    pw.write_text("sepm-pass\n")
    api = FakeApi(lambda r: httpx.Response(201, json={"name": "site-a"}))
    result = run(
        api, "sites", "add", "--name", "site-a", "--api-url", "https://sepm-a1:8446/sepm/api/v1",
        "--version", "14.3.9000", "--partner", "site-b", "--trust-pem", str(ca),
        "--driver", "winrm", "--username", "svc", "--password-file", str(pw),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = api.bodies()[0]
    assert body["sepm_credentials"] == {"username": "svc", "password": "sepm-pass", "domain": ""}
    assert body["replication_partners"] == ["site-b"]
    assert body["trusted_certificates_pem"] == [ca.read_text()]
    assert "host_ops_credentials" not in body
    assert "sepm-pass" not in result.output
    # A username with no password file, off a terminal: refused before sending.
    result = run(
        api, "sites", "add", "--name", "site-a", "--api-url", "u", "--version", "1", "--driver", "manual",
        "--username", "svc",
    )  # fmt: skip
    assert result.exit_code == 2 and len(api.requests) == 1


def test_servers_add_parses_ports():
    api = FakeApi(lambda r: httpx.Response(201, json={"name": "sepm-a1"}))
    base = ["servers", "add", "--name", "sepm-a1", "--site", "site-a", "--address", "10.0.0.5"]
    base += ["--version", "14.3", "--hostname", "sepm-a1.corp", "--hostname", "sepm-a1"]
    result = run(api, *base, "--port", "8443=8443", "--port", "443=10443")
    assert result.exit_code == 0, result.output
    assert api.bodies()[0]["ports"] == {"8443": 8443, "443": 10443}
    assert api.bodies()[0]["hostnames"] == ["sepm-a1.corp", "sepm-a1"]
    result = run(api, *base, "--port", "8443")
    assert result.exit_code == 2 and "NAME=NUMBER" in result.stderr


def test_tokens_create_prints_only_the_token_on_stdout():
    api = FakeApi(
        lambda r: httpx.Response(
            201, json={"id": "t1", "name": "itsm", "role": "operator", "token": "crt_abc"}
        )
    )
    result = run(api, "tokens", "create", "--name", "itsm", "--role", "operator")
    assert result.exit_code == 0
    assert result.stdout == "crt_abc\n"
    assert "shown only this once" in result.stderr


def test_tasks_lists_and_confirm_is_a_subcommand():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"task_id": "T1", "status": "confirmed"})
        return httpx.Response(
            200,
            json={"items": [{"task_id": "T1", "status": "open", "server": "sepm-a1",
                             "title": "Install the certificate", "rotation_id": "rot-1",
                             "instructions": "Run the importer", "verification": "TLS"}]},
        )  # fmt: skip

    api = FakeApi(answer)
    listed = run(api, "tasks", "--rotation", "rot-1")
    assert listed.exit_code == 0 and "Install the certificate" in listed.stdout
    assert api.requests[0].url.params["rotation_id"] == "rot-1"
    confirmed = run(api, "tasks", "confirm", "T1", "--note", "done at 10:02")
    assert confirmed.exit_code == 0, confirmed.output
    assert "T1: confirmed" in confirmed.stdout
    assert api.bodies()[1] == {"note": "done at 10:02"}


def test_on_a_terminal_the_password_is_prompted_without_echo(pkcs12_file, monkeypatch):
    monkeypatch.setattr("certrotate.client.passwords.stdin_is_terminal", lambda: True)
    api = FakeApi(created)
    result = CliRunner().invoke(
        main,
        ["rotate", "--site", "a", "--bundle", str(pkcs12_file), "--token", "t"],
        obj={"api_transport": httpx.MockTransport(api)},
        input="typed-secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "The pkcs12 keystore password:" in result.output
    assert "typed-secret" not in result.output
    assert api.bodies()[0]["certificate"]["password"] == "typed-secret"


def test_a_json_token_file_gives_its_admin_token_or_token(tmp_path):
    api = FakeApi(lambda r: httpx.Response(200, json=view()))
    secrets_json = tmp_path / "secrets.json"
    secrets_json.write_text(json.dumps({"master_key": "m", "admin_token": "adm-1"}))
    created_json = tmp_path / "itsm.json"
    created_json.write_text(json.dumps({"id": "t1", "token": "crt_xyz"}))
    for path in (secrets_json, created_json):
        assert run(api, "status", "rot-1", "--token-file", str(path), token=False).exit_code == 0
    assert [r.headers["authorization"] for r in api.requests] == ["Bearer adm-1", "Bearer crt_xyz"]
    broken = tmp_path / "broken.json"
    broken.write_text('{"master_key": "m"}')
    result = run(api, "status", "rot-1", "--token-file", str(broken), token=False)
    assert result.exit_code == 2 and "no admin_token or token field" in result.stderr


def test_a_watch_outlives_a_short_api_outage(monkeypatch):
    monkeypatch.setattr("certrotate.client.watch.UNAVAILABLE_PATIENCE_S", 5.0)
    answers = iter(
        [
            httpx.Response(200, json=view()),
            problem(503, "Service unavailable", "restarting"),
            httpx.Response(200, json=view("completed")),
        ]
    )
    result = run(
        FakeApi(lambda r: next(answers)), "status", "rot-1", "--watch", "--interval", "0.05"
    )
    assert result.exit_code == 0, result.output
    assert "retrying" in result.stderr and "rotation rot-1 completed" in result.stderr


def test_a_watch_gives_up_when_the_api_stays_away(monkeypatch):
    monkeypatch.setattr("certrotate.client.watch.UNAVAILABLE_PATIENCE_S", 0.0)
    answers = iter([httpx.Response(200, json=view())])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, problem(503, "Service unavailable", "down"))

    result = run(FakeApi(answer), "status", "rot-1", "--watch", "--interval", "0.05")
    assert result.exit_code == 3
    assert "Service unavailable (503): down" in result.stderr


def test_options_given_to_the_tasks_group_reach_its_confirm_subcommand(tmp_path):
    api = FakeApi(lambda r: httpx.Response(200, json={"task_id": "T1", "status": "confirmed"}))
    token_file = tmp_path / "token"
    token_file.write_text("group-token")
    result = run(
        api, "tasks", "--api", "http://elsewhere:9000", "--token-file", str(token_file),
        "confirm", "T1", token=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert str(api.requests[0].url) == "http://elsewhere:9000/v1/tasks/T1/confirm"
    assert api.requests[0].headers["authorization"] == "Bearer group-token"
