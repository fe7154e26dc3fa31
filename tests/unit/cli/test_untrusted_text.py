"""Text that comes from operators, SEPM or the API is shown as it is, never read as Rich markup,
and the CLI warns when the way it is called exposes the API token.

A task title or a site name like `[/bold]` used to crash `certrotate tasks` (MarkupError), and
`[link=...]` or `[red]` could dress up an instruction an operator then follows.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from certrotate import rotation_view
from certrotate.cli import main

pytestmark = pytest.mark.unit

# Each one either crashes Rich's markup parser or is rendered as something else than it is.
HOSTILE = "[/bold] [link=https://evil.example]click[/link] [red]DONE[/red] [blink]"
# The same, short enough for a narrow table column not to wrap it.
SHORT = "[/b][red]ok[/red]"


@pytest.fixture(autouse=True)
def no_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERTROTATE_API_URL", "CERTROTATE_API_TOKEN", "CERTROTATE_API_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def invoke(answer: Any, *args: str, token_file: str | None = None) -> Result:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer(request) if callable(answer) else answer)

    obj = {"api_transport": httpx.MockTransport(handler)}
    extra = ["--token-file", token_file] if token_file else ["--token", "tok-123"]
    return CliRunner().invoke(main, [*args, *extra], obj=obj)


def _flat(text: str) -> str:
    return " ".join(text.split())


def hostile_view(state: str = "paused") -> dict[str, Any]:
    return {
        "id": "rot-1",
        "site": HOSTILE,
        "state": state,
        "change_id": HOSTILE,
        "current_step": {"name": "gates", "number": 4, "title": HOSTILE, "server": HOSTILE},
        "reason": HOSTILE,
        "hold": {"paused": True, "reason": HOSTILE},
        "pending_decision": {"reason": HOSTILE, "options": ["extend", "abort"]},
        "gates": {"waiting_for": [], "approval": {"required": True, "approved_by": HOSTILE}},
        "servers": [{"name": HOSTILE, "status": "failed", "error": HOSTILE}],
        "replication": {"partners": [{"name": HOSTILE}], "broken": [HOSTILE]},
        "open_tasks": [{"task_id": "T1", "status": "open", "server": HOSTILE, "title": HOSTILE}],
        "steps": [{"number": 1, "name": "x", "title": HOSTILE, "status": "done"}],
    }


def hostile_event() -> dict[str, Any]:
    return {
        "seq": 1,
        "at": "2026-11-30T03:00:00Z",
        "kind": "operator",
        "type": SHORT,
        "actor": SHORT,
        "step": SHORT,
        "detail": {"text": SHORT},
    }


def test_tasks_shows_hostile_titles_and_instructions_literally():
    task = {
        "task_id": "T1",
        "status": "open",
        "server": HOSTILE,
        "title": HOSTILE,
        "rotation_id": "rot-1",
        "instructions": f"Run: [System.Convert]::ToBase64String($bytes) {HOSTILE}",
        "verification": HOSTILE,
        "last_failure": HOSTILE,
    }
    result = invoke({"items": [task]}, "tasks")
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    assert out.count(HOSTILE) >= 5
    assert "[System.Convert]::ToBase64String($bytes)" in out


def test_status_shows_hostile_api_text_literally():
    result = invoke(hostile_view(), "status", "rot-1")
    assert result.exit_code == 0, result.output
    assert _flat(result.stdout).count(HOSTILE) >= 8


def test_the_end_of_a_watch_shows_the_reason_literally():
    result = invoke(hostile_view("compensated"), "status", "rot-1", "--watch", "--interval", "0.05")
    assert result.exit_code == 4
    assert HOSTILE in _flat(result.stderr)


def test_events_and_lists_show_hostile_text_literally():
    events = invoke({"items": [hostile_event()], "next_after": None}, "events", "rot-1")
    assert events.exit_code == 0, events.output
    assert _flat(events.stdout).count(SHORT) == 4
    sites = invoke(
        {"items": [{"name": SHORT, "version": "14.3", "replication_partners": [SHORT]}]},
        "sites",
        "list",
    )
    assert sites.exit_code == 0, sites.output
    assert _flat(sites.stdout).count(SHORT) == 2
    shown = invoke({"name": HOSTILE, "api_url": HOSTILE}, "sites", "show", "x")
    assert shown.exit_code == 0, shown.output
    assert _flat(shown.stdout).count(HOSTILE) == 2


def test_the_rendered_panel_shows_hostile_text_literally_on_a_markup_console():
    # The demo prints the same panel on a console that reads markup in its own strings.
    console = Console(file=StringIO(), width=400, color_system=None)
    console.print(rotation_view.rotation_panel(hostile_view(), events=[hostile_event()]))
    text = _flat(console.file.getvalue())  # type: ignore[attr-defined]
    # type, actor and detail (the panel's one-line events leave out the step column)
    assert text.count(HOSTILE) >= 10 and text.count(SHORT) == 3


# --- warnings about how the token travels ------------------------------------------------------


def test_a_token_on_the_command_line_is_warned_about():
    result = invoke({"items": []}, "list")
    assert result.exit_code == 0
    assert "warning" in result.stderr and "--token-file" in result.stderr
    assert "tok-123" not in result.stderr


def test_a_token_file_gives_no_warning_on_loopback(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("tok-123\n")
    for url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        result = invoke({"items": []}, "list", "--api", url, token_file=str(token_file))
        assert result.exit_code == 0
        assert "warning" not in result.stderr, url


@pytest.mark.parametrize("url", ["http://sepm-ops.corp.example:8080", "http://10.1.2.3:8080"])
def test_plain_http_to_another_host_is_warned_about(tmp_path, url):
    token_file = tmp_path / "token"
    token_file.write_text("tok-123\n")
    result = invoke({"items": []}, "list", "--api", url, token_file=str(token_file))
    assert result.exit_code == 0
    assert "warning" in result.stderr and "https" in result.stderr
    https = invoke(
        {"items": []}, "list", "--api", url.replace("http:", "https:"), token_file=str(token_file)
    )
    assert "warning" not in https.stderr
