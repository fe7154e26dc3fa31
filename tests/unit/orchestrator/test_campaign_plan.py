"""Campaign decisions: waves and canary, the cap, one rotation per farm, the failure budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.domain import campaign as c
from orchestrator.domain import campaign_actions as a
from orchestrator.domain import campaign_plan as p
from orchestrator.domain import campaign_progress as cp
from orchestrator.domain import campaign_waves as w
from orchestrator.domain.orphans import orphaned_outside_risk
from orchestrator.domain.state import MaintenanceWindow, ServerStatus

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def make(
    waves: list[list[str]],
    *,
    farms: dict[str, str] | None = None,
    cap: int = 10,
    failures: int = 0,
    approve: bool = False,
) -> c.CampaignState:
    sites = [s for w in waves for s in w]
    return c.new_campaign(
        campaign_id="c1", name="ca-retired", waves=waves,
        farms={s: (farms or {}).get(s, s) for s in sites}, bundles={s: {} for s in sites},
        max_concurrent=cap, max_failures=failures, approve_each_wave=approve, options={},
        change_id=None, by="ops", now=NOW,
    )  # fmt: skip


def run(state: c.CampaignState, outcomes: dict[str, str] | None = None) -> list[list[str]]:
    """Drive the campaign to its end: each round, start what it asks, then end all running."""
    rounds = []
    for n in range(100):
        for site in w.progress(state, NOW):
            w.started(state, site, f"rot-{site}", NOW)
        running = [s.site for s in state.active()]
        if not running:
            break
        rounds.append(sorted(running))
        w.observe(state, {f"rot-{s}": (outcomes or {}).get(s, "completed") for s in running}, NOW)
        assert n < 99
    return rounds


def test_generated_plan_puts_a_canary_first_then_waves_of_the_given_size():
    sites = [f"s{i}" for i in range(8)]
    assert p.generate_waves(sites, canary=1, size=3) == [
        ["s0"], ["s1", "s2", "s3"], ["s4", "s5", "s6"], ["s7"]
    ]  # fmt: skip
    assert p.generate_waves(sites[:2], canary=0, size=5) == [["s0", "s1"]]


def test_a_site_listed_twice_is_refused():
    with pytest.raises(p.InvalidPlanError, match="s1"):
        p.check_waves([["s0", "s1"], ["s1"]])


def test_a_wave_starts_only_after_the_previous_one_ended():
    state = make([["canary"], ["a", "b"], ["c"]])
    assert run(state) == [["canary"], ["a", "b"], ["c"]]
    assert state.status == "completed"
    assert [e["wave"] for e in state.events if e["type"] == "WaveStarted"] == [1, 2]


def test_the_cap_limits_rotations_running_at_once():
    state = make([["a", "b", "c", "d", "e"]], cap=2)
    assert run(state) == [["a", "b"], ["c", "d"], ["e"]]


def test_two_sites_of_one_farm_never_rotate_at_once():
    # a, b and c replicate with each other (farm "a"); d is alone.
    state = make([["a", "b", "c", "d"]], farms={"a": "a", "b": "a", "c": "a"}, cap=3)
    rounds = run(state)
    assert rounds == [["a", "d"], ["b"], ["c"]]
    for running in rounds:
        farms = [state.sites[s].farm for s in running]
        assert len(farms) == len(set(farms))


def test_more_failures_than_the_budget_halts_with_a_decision_waiting():
    state = make([["a", "b"], ["c"]], failures=1)
    rounds = run(state, outcomes={"a": "compensated", "b": "failed"})
    assert rounds == [["a", "b"]]
    assert state.status == "halted"
    assert state.decision is not None and state.decision.kind == "failure_budget"
    assert state.sites["c"].status == "pending"
    # "continue": the failures so far are accepted; the campaign goes on.
    a.approve(state, "approver", "continue", "known flaky site", NOW)
    assert run(state) == [["c"]]
    assert state.status == "completed"


def test_abort_after_a_halt_skips_what_was_left():
    state = make([["a"], ["b"]])
    run(state, outcomes={"a": "failed"})
    a.approve(state, "approver", "abort", "", NOW)
    run(state)
    assert state.status == "aborted"
    assert state.sites["b"].status == "skipped"


def test_wave_approval_holds_the_next_wave_until_approved():
    state = make([["a"], ["b"]], approve=True)
    assert run(state) == [["a"]]
    assert state.status == "awaiting_approval"
    with pytest.raises(a.CampaignRejectedError):
        a.resume(state, "ops", NOW)
    a.approve(state, "approver", "continue", "", NOW)
    assert run(state) == [["b"]]
    assert state.status == "completed"


def test_cancel_asks_running_rotations_to_cancel_and_skips_pending_sites():
    state = make([["a", "b"], ["c"]], cap=1)
    for site in w.progress(state, NOW):
        w.started(state, site, f"rot-{site}", NOW)
    a.cancel(state, "ops", "wrong CA", NOW)
    assert [s.site for s in a.claim_cancels(state, {}, NOW)] == ["a"]
    assert a.claim_cancels(state, {"rot-a": "compensating"}, NOW) == []  # asked once only
    assert w.progress(state, NOW) == []
    assert state.status == "cancelling"
    w.observe(state, {"rot-a": "compensated"}, NOW)
    w.progress(state, NOW)
    assert state.status == "cancelled"
    assert {s: v.status for s, v in state.sites.items()} == {
        "a": "cancelled", "b": "skipped", "c": "skipped"
    }  # fmt: skip


def test_a_paused_campaign_starts_nothing_and_resumes_where_it_was():
    state = make([["a", "b"]], cap=1)
    run_once = w.progress(state, NOW)
    assert run_once == ["a"]
    w.started(state, "a", "rot-a", NOW)
    a.pause(state, "ops", NOW)
    w.observe(state, {"rot-a": "completed"}, NOW)
    assert w.progress(state, NOW) == []
    a.resume(state, "ops", NOW)
    assert w.progress(state, NOW) == ["b"]


def test_a_cancel_lost_in_a_crash_is_asked_again_but_not_one_refused_past_the_swap():
    state = make([["a", "b"]], cap=2)
    for site in w.progress(state, NOW):
        w.started(state, site, f"rot-{site}", NOW)
    a.cancel(state, "ops", "wrong CA", NOW)
    assert [s.site for s in a.claim_cancels(state, {}, NOW)] == ["a", "b"]
    live = {"rot-a": "compensating", "rot-b": "running"}
    # A tick at once (another replica's, or the loop's beside the API's): "b"'s ask is merely
    # on its way, not lost; asking again would put a second cancel in its history.
    assert a.claim_cancels(state, live, NOW) == []
    # "a" was asked and is compensating; the process died before asking "b"; "a" is fine.
    later = NOW + a.CANCEL_RETRY
    assert [s.site for s in a.claim_cancels(state, live, later)] == ["b"]
    # "b" refused: past its swap, only forward recovery; it is not asked again.
    a.cancel_refused(state, "b", later)
    assert a.claim_cancels(state, live, later + a.CANCEL_RETRY) == []


def test_a_site_held_by_another_rotation_is_retried_without_filling_the_history():
    state = make([["a"]])
    for _ in range(50):  # fifty ticks while a rotation outside the campaign holds the site
        assert w.progress(state, NOW) == ["a"]
        w.start_deferred(state, "a", "waiting: site 'a' is busy: rotation r-1", NOW)
    assert state.sites["a"].status == "pending"
    assert state.sites["a"].note == "waiting: site 'a' is busy: rotation r-1"
    assert len(state.events) < 5
    assert w.progress(state, NOW) == ["a"]
    w.started(state, "a", "rot-a", NOW)
    assert state.sites["a"].note is None


def test_tags_expand_to_their_sites_named_sites_keep_their_place():
    tagged = {"emea": ["e1", "e2", "e3"], "prod": ["e2", "p1"]}
    plan = p.PlanAsked(waves=[["e3"], ["tag:emea"], ["tag:prod"]])
    assert p.resolve_plan(plan, tagged) == [["e3"], ["e1", "e2"], ["p1"]]
    generated = p.PlanAsked(sites=["tag:prod", "tag:emea"], canary=1, wave_size=2)
    assert p.resolve_plan(generated, tagged) == [["e2"], ["p1", "e1"], ["e3"]]
    with pytest.raises(p.UnknownTagError, match="apac"):
        p.resolve_plan(p.PlanAsked(waves=[["tag:apac"]]), tagged)


def _rotation(at_risk: int, accepted: int | None, servers: list[ServerStatus]) -> Any:
    from orchestrator.domain.state import PropagationReading, PropagationWait, RiskAcceptance
    from tests.unit.orchestrator.saga_driver import SagaDriver

    state = SagaDriver(servers=len(servers)).state
    reading = PropagationReading(
        total=100, reached=100 - at_risk, pending_online=at_risk, pending_offline=0,
        orphan_risk=at_risk, stale=0, percent=100.0 - at_risk, observed_at=NOW,
    )  # fmt: skip
    state.waits = [PropagationWait(step="await_disable_propagation", watch_id="w", target_serials={},
                                   started_at=NOW, deadline=NOW, reading=reading)]  # fmt: skip
    if accepted is not None:
        state.risk_acceptance = RiskAcceptance(
            by="cab", at=NOW, reason="kiosks", accepted_count=accepted, step="gates"
        )
    for progress, status in zip(state.servers, servers, strict=True):
        progress.status = status
    return state


def test_clients_count_as_orphaned_only_past_a_swap_and_beyond_the_accepted_list():
    assert orphaned_outside_risk(_rotation(3, 2, ["updated", "pending"])) == 1
    assert orphaned_outside_risk(_rotation(3, 3, ["updated", "updated"])) == 0
    assert orphaned_outside_risk(_rotation(3, None, ["pending", "pending"])) == 0
    # Rolled back: the old certificate is served again, nobody is cut off.
    assert orphaned_outside_risk(_rotation(3, None, ["rolled_back", "rolled_back"])) == 0


def test_a_site_starts_only_inside_its_own_window_in_its_own_time_zone():
    paris = MaintenanceWindow(cron="0 1 * * *", duration_minutes=60, timezone="Europe/Paris")
    tokyo = MaintenanceWindow(cron="0 2 * * *", duration_minutes=60, timezone="Asia/Tokyo")
    state = make([["paris", "tokyo"]])
    state.sites["paris"].window = paris
    state.sites["tokyo"].window = tokyo
    # 00:00 UTC is 01:00 in Paris (open) and 09:00 in Tokyo (closed until 02:00 JST).
    assert w.progress(state, NOW) == ["paris"]
    assert (
        state.sites["tokyo"].note
        == "waiting for its maintenance window (opens 2026-11-30T17:00:00+00:00)"
    )
    assert [e["site"] for e in state.events if e["type"] == "SiteAwaitsWindow"] == ["tokyo"]
    w.progress(state, NOW + timedelta(hours=1))  # still closed: not recorded again
    assert len([e for e in state.events if e["type"] == "SiteAwaitsWindow"]) == 1
    assert w.progress(state, NOW + timedelta(hours=17, minutes=30)) == ["tokyo"]
    assert state.sites["tokyo"].note is None


def test_a_wave_with_a_window_starts_when_it_opens_after_the_previous_wave():
    saturday_night = MaintenanceWindow(cron="0 22 * * 6", duration_minutes=240)
    state = make([["a"], ["b", "c"]])
    state.wave_windows = [None, saturday_night]
    assert w.progress(state, NOW) == ["a"]
    w.started(state, "a", "rot-a", NOW)
    w.observe(state, {"rot-a": "completed"}, NOW)
    assert w.progress(state, NOW + timedelta(hours=1)) == []
    assert state.current_wave == 1
    (waiting,) = [e for e in state.events if e["type"] == "WaveAwaitsWindow"]
    assert waiting["opens_at"] == "2026-12-05T22:00:00+00:00"
    assert w.progress(state, datetime(2026, 12, 5, 23, tzinfo=UTC)) == ["b", "c"]


def test_the_rotation_swaps_in_the_sites_window_unless_the_options_name_one():
    tokyo = MaintenanceWindow(cron="0 2 * * *", duration_minutes=60, timezone="Asia/Tokyo")
    state = make([["tokyo", "other"]])
    state.sites["tokyo"].window = tokyo
    assert c.rotation_options(state, "tokyo")["maintenance_window"] == tokyo.model_dump()
    assert c.rotation_options(state, "other").get("maintenance_window") is None
    fixed = MaintenanceWindow(cron="0 3 * * 0", duration_minutes=60)
    state.options = {"maintenance_window": fixed.model_dump()}
    assert c.rotation_options(state, "tokyo")["maintenance_window"] == fixed.model_dump()


def test_a_farms_sites_take_their_places_leaves_first_hub_last():
    partners = {"h": {"x", "y"}, "x": {"h"}, "y": {"h"}, "solo": set()}
    farms = {"h": "h", "x": "h", "y": "h", "solo": "solo"}
    waves = [["h", "solo", "y", "x"]]
    assert p.farm_order(waves, farms, partners) == [["x", "solo", "y", "h"]]


def test_a_farms_next_site_waiting_for_its_window_is_not_overtaken_by_a_later_one():
    closed = MaintenanceWindow(cron="0 12 * * *", duration_minutes=60)  # noon UTC
    state = make([["x", "h"]], farms={"x": "h", "h": "h"})
    state.sites["x"].window = closed
    assert w.progress(state, NOW) == []
    assert state.sites["h"].status == "pending"
    assert w.progress(state, NOW + timedelta(hours=12)) == ["x"]


def test_a_rotation_that_left_partnerships_broken_holds_the_rest_of_its_farm():
    state = make([["x", "y", "solo"]], farms={"x": "h", "y": "h", "solo": "solo"}, failures=5)
    assert sorted(w.progress(state, NOW)) == ["solo", "x"]
    for site in ("x", "solo"):
        w.started(state, site, f"rot-{site}", NOW)
    broken = _rotation(0, None, ["rolled_back", "rolled_back"])
    broken.broken_partners = ["h"]
    w.note_rotations(state, {"rot-x": broken}, NOW)
    w.observe(state, {"rot-x": "failed", "rot-solo": "completed"}, NOW)
    assert w.progress(state, NOW) == []
    assert state.sites["y"].status == "skipped"
    assert "x" in (state.sites["y"].note or "") and "h" in (state.sites["y"].note or "")
    (held,) = [e for e in state.events if e["type"] == "FarmHeld"]
    assert held["site"] == "x" and held["partners"] == ["h"] and held["skipped"] == ["y"]
    assert state.status == "completed"


def test_progress_sums_the_clients_of_every_rotation_and_forecasts_the_end():
    state = make([["a", "b", "c", "d"]], cap=2)
    for site in w.progress(state, NOW):
        w.started(state, site, f"rot-{site}", NOW)
    w.note_rotations(
        state,
        {"rot-a": _rotation(10, None, ["pending", "pending"]),
         "rot-b": _rotation(0, None, ["pending", "pending"])},
        NOW,
    )  # fmt: skip
    assert cp.clients(state) == {
        "total": 200, "reached": 190, "pending": 10, "at_risk": 10, "orphaned_outside_risk": 0,
        "sites_reporting": 2,
    }  # fmt: skip
    assert cp.forecast_end(state, NOW) is None  # nothing has finished to learn from
    later = NOW + timedelta(days=2)
    w.observe(state, {"rot-a": "completed"}, later)
    # One rotation took two days; b, c, d remain with two lanes: two more rounds of two days.
    assert cp.forecast_end(state, later) == later + timedelta(days=4)
    # Past the swap (or the end) clients are no longer "at risk": they were reached or cut off.
    w.note_rotations(state, {"rot-b": _rotation(3, 3, ["updated", "updated"])}, later)
    assert cp.clients(state)["at_risk"] == 0
