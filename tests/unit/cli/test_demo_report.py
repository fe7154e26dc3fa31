"""The demo's closing report: what a person (and a script reading --json) is told the rotation
did, built from a recorded rotation view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from certrotate.demo_report import build_report, render_report

pytestmark = pytest.mark.unit

VIEW = json.loads((Path(__file__).parent / "demo_rotation.json").read_text())["view"]
OLD, NEW = "ab" * 32, "cd" * 32


def test_the_report_names_each_port_before_and_after_and_the_simulated_time_per_step() -> None:
    report = build_report(
        VIEW,
        {"sepm-a2": {"8443": OLD, "443": OLD}},
        {"sepm-a2": {"8443": NEW}},
        {"count": 2, "client_ids": ["c1", "c2"]},
        {"site-b": "SUCCEEDED"},
        real_seconds=61.26,
    )
    assert report["orphaned_clients"] == 2 and report["orphaned_client_ids"] == ["c1", "c2"]
    assert report["servers"] == [
        {
            "name": "sepm-a2",
            "ports": {"443": {"before": OLD, "after": None}, "8443": {"before": OLD, "after": NEW}},
        }
    ]
    steps = {(s["name"], s["server"]): s for s in report["steps"]}
    assert steps[("update_certificate", "sepm-a1")]["simulated_seconds"] > 3600
    assert steps[("restore_replication", None)]["simulated_seconds"] is None  # still running
    assert report["real_seconds"] == 61.3
    json.dumps(report)  # what --json prints

    console = Console(width=120, record=True)
    console.print(render_report(report))
    text = console.export_text()
    assert "orphaned clients  2" in text and "site-b: SUCCEEDED" in text
    assert f"{OLD[:16]}…" in text and f"{NEW[:16]}…" in text
    assert "2.2 h" in text  # a step's simulated duration, in a unit a person reads
