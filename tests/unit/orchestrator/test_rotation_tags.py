"""The rotation view's entity tag: it changes exactly when the answer would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator.domain.state import MaintenanceWindow
from orchestrator.domain.steps import TABLES
from orchestrator.entrypoints.conditional import none_match
from orchestrator.entrypoints.rotation_models import VIEW_REVISION, view_revision
from orchestrator.service_layer.rotation_reads import RotationStamp

NIGHTLY = MaintenanceWindow(cron="0 22 * * *", duration_minutes=120, timezone="UTC")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TASK = {"task_id": "t1", "status": "open", "confirmed_by": None}


def test_a_window_opening_or_closing_changes_the_tag_and_waiting_for_it_does_not():
    stamp = RotationStamp(version=7, window=NIGHTLY, open_tasks=[])
    noon, afternoon = (
        stamp.tag(NOON, revision="r"),
        stamp.tag(NOON + timedelta(hours=3), revision="r"),
    )
    opened = stamp.tag(NOON.replace(hour=22, minute=30), revision="r")
    closed = stamp.tag(NOON.replace(hour=23, minute=59) + timedelta(hours=1), revision="r")
    # "open now" and "next opening" are what the view shows of the window.
    assert noon == afternoon
    assert len({noon, opened, closed}) == 3


def test_a_new_version_a_task_change_or_another_view_shape_changes_the_tag():
    base = RotationStamp(version=7, window=None, open_tasks=[TASK])
    tag = base.tag(NOON, revision="r")
    assert tag == RotationStamp(7, None, [dict(TASK)]).tag(NOON + timedelta(days=9), revision="r")
    assert tag != RotationStamp(8, None, [TASK]).tag(NOON, revision="r")
    assert tag != RotationStamp(7, None, [{**TASK, "status": "confirmed"}]).tag(NOON, revision="r")
    assert tag != base.tag(NOON, revision="another shape")
    assert tag.startswith('"7.') and tag.endswith('"')


def test_if_none_match_names_a_tag_in_a_list_weakly_or_by_star():
    tag = '"7.ab"'
    assert not none_match('"7.ab"', tag)
    assert not none_match('"x", "7.ab"', tag)
    assert not none_match('W/"7.ab"', tag)
    assert not none_match(" * ", tag)
    assert not none_match('"a,b", W/"7.ab"', tag)  # a comma inside a tag is part of it
    assert none_match(None, tag)
    assert none_match('"7.AB"', tag)  # tags compare byte for byte
    assert none_match("7.ab", tag)  # unquoted: not an entity tag
    assert none_match('"x" "7.ab"', tag)  # no comma: the header does not parse


def test_a_step_renamed_by_an_upgrade_changes_the_views_revision():
    # The titles come from the step tables, not from the stored saga: after an upgrade that
    # renames a step, a poller's old tag must not be answered 304 with the old title.
    renamed = {
        phase: [replace(s, title=s.title + " (renamed)") if i == 0 else s
                for i, s in enumerate(table)]
        for phase, table in TABLES.items()
    }  # fmt: skip
    assert view_revision(TABLES) == VIEW_REVISION
    assert view_revision(renamed) != VIEW_REVISION
