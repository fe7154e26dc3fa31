"""What the dashboard draws from the API's JSON: the seven steps, the propagation curve, the
fingerprints per port and the buttons a role gets (pure; the pages are tested in a browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.entrypoints.dashboard import presenters
from orchestrator.service_layer.tokens import Principal, Role

pytestmark = pytest.mark.unit

# A real demo run's view at step 7 (tests/unit/cli keeps it for the terminal view too).
VIEW = json.loads((Path(__file__).parents[1] / "cli" / "demo_rotation.json").read_text())["view"]


def test_the_timeline_has_the_seven_steps_in_order_with_their_times() -> None:
    rows = presenters.timeline(VIEW)
    numbered = [r for r in rows if r.number]
    assert [r.number for r in numbered] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.status for r in numbered] == ["done"] * 6 + ["running"]
    swap = numbered[3]
    assert [s["server"] for s in swap.servers] == ["sepm-a1", "sepm-a2"]
    assert swap.started_at == "2026-12-03T08:00:10.500412Z"
    assert swap.finished_at == "2026-12-03T12:19:14.263000Z" and swap.took == "4.3 h"
    assert swap.attempts == 1
    assert numbered[6].finished_at is None


def test_a_step_that_only_waits_reads_waiting_and_steps_not_reached_read_pending() -> None:
    view = {**VIEW, "state": "running", "current_step": {"name": "await_disable_propagation"}}
    view["steps"] = [s for s in VIEW["steps"] if s["name"] in ("inspect", "break_replication",
                     "disable_verification", "await_disable_propagation")]  # fmt: skip
    view["steps"][-1] = {**view["steps"][-1], "status": "running", "finished_at": None}
    view["propagation"] = [{**VIEW["propagation"][0], "outcome": "waiting"}]
    rows = {r.name: r.status for r in presenters.timeline(view)}
    assert rows["await_disable_propagation"] == "waiting"
    assert rows["update_certificate"] == "pending"
    ended = {**view, "state": "failed"}
    assert {r.name: r.status for r in presenters.timeline(ended)}[
        "restore_replication"
    ] == "not run"


def test_the_curve_starts_at_zero_and_dashes_the_forecast_while_waiting() -> None:
    wait = {
        "started_at": "2026-11-30T00:00:00Z", "outcome": "waiting",
        "observed_at": "2026-11-30T12:00:00Z", "percent": 60.0,
        "forecast_complete_at": "2026-12-01T00:00:00Z",
    }  # fmt: skip
    chart = presenters.propagation_chart(
        wait, [("2026-11-30T06:00:00Z", 30.0)], width=100, height=100
    )
    assert chart.line == "0.0,100.0 25.0,70.0 50.0,40.0"
    assert chart.forecast == (50.0, 40.0, 100.0, 0.0)
    assert chart.summary == (
        "60.0% reached at 2026-11-30 12:00 UTC; forecast: all reached by 2026-12-01 00:00 UTC"
    )
    done = presenters.propagation_chart({**wait, "outcome": "propagated"}, [])
    assert done.forecast is None
    fresh = presenters.propagation_chart(
        {"started_at": wait["started_at"], "outcome": "waiting"}, []
    )
    assert fresh.summary == "no reading yet"


def test_each_verified_port_shows_the_fingerprint_before_and_after() -> None:
    rows = presenters.port_rows(VIEW["servers"][0])
    assert [r["port"] for r in rows] == ["443", "8443", "8445", "8446"]
    assert all(r["matches"] for r in rows)
    assert rows[0]["before"].startswith("d2b6ef0c") and rows[0]["after"].startswith("4163b45d")


@pytest.mark.parametrize(
    ("role", "offered"),
    [
        ("viewer", []),
        ("operator", ["extend", "abort"]),
        ("approver", ["extend", "proceed", "abort"]),
    ],
)
def test_the_buttons_follow_the_role(role: Role, offered: list[str]) -> None:
    pending = {"options": ["extend", "proceed", "abort"]}
    who = Principal(name="x", role=role)
    assert [c["value"] for c in presenters.decision_choices(pending, who.may)] == offered


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_text_colour_is_readable_on_its_background() -> None:
    """WCAG AA: at least 4.5:1 for text, on the page, on panels and on buttons."""
    css = (Path(presenters.__file__).parent / "static" / "dashboard.css").read_text()
    colours = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6});", css))
    texts = ("ink", "muted", "accent", "ok", "warn", "bad", "wait")
    pairs = [(colours[t], colours[bg]) for t in texts for bg in ("paper", "panel")]
    pairs += [("#ffffff", colours["accent"]), ("#ffffff", colours["bad"]), ("#ffffff", "#10243e")]
    weak = [(fg, bg, round(contrast(fg, bg), 2)) for fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert not weak, weak


def test_history_values_read_as_text_not_python() -> None:
    assert presenters.readable([["site-c"], ["site-a", "site-b"]]) == "site-c / site-a, site-b"
    assert presenters.readable({"wave": 2, "sites": ["x"]}) == "wave 2, sites x"
