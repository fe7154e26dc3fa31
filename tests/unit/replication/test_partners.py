"""The replication rules: whose partnership is it, and when has a restore succeeded or failed."""

from __future__ import annotations

import pytest

from replication.domain.partners import (
    Baseline,
    BreakDecision,
    PartnerObservation,
    decide_break,
    judge_restore,
    observe_partners,
    poll_delay,
)

pytestmark = pytest.mark.unit


def seen(code: str, run: int | None = 200, success: int | None = 200) -> PartnerObservation:
    return PartnerObservation("site-b", code, last_run_ms=run, last_success_ms=success)


def judge(observation, baseline=Baseline(100, 100), timed_out=False):
    return judge_restore("site-b", observation, baseline, timed_out=timed_out, timeout_s=3600)


def test_reads_sepms_status_fields():
    status = {
        "replicationStatus": {
            "replicationPartnerStatusList": [
                {
                    "name": "site-b",
                    "status_code": "PROCESSING",
                    "lastRunTime": 5,
                    "lastSuccessfulRunTime": None,
                }
            ]
        }
    }
    assert observe_partners(status) == {
        "site-b": PartnerObservation("site-b", "PROCESSING", last_run_ms=5, last_success_ms=None)
    }
    assert observe_partners({"replicationStatus": {}}) == {}


def test_a_listed_partner_is_deleted():
    assert decide_break(present=True, broken_by_this_saga=False) is BreakDecision.DELETE
    assert decide_break(present=True, broken_by_this_saga=True) is BreakDecision.DELETE


def test_an_absent_partner_is_ours_only_if_this_saga_set_out_to_delete_it():
    assert decide_break(present=False, broken_by_this_saga=True) is BreakDecision.OURS
    assert decide_break(present=False, broken_by_this_saga=False) is BreakDecision.NOT_OURS


def test_success_counts_only_for_a_run_after_we_asked():
    assert not judge(seen("SUCCEEDED", success=100)).done  # the old run's success
    verdict = judge(seen("SUCCEEDED", success=101))
    assert verdict.done and verdict.succeeded
    assert judge(seen("SUCCEEDED"), baseline=Baseline()).succeeded  # a freshly added partner


def test_a_failed_run_reports_its_status_code():
    verdict = judge(seen("FAILED_CONNECT", run=150, success=100))
    assert verdict.done and not verdict.succeeded
    assert verdict.status_code == "FAILED_CONNECT"
    assert verdict.reason == "replication with site-b ended FAILED_CONNECT"
    assert judge(seen("CANCELED", run=150)).status_code == "CANCELED"


def test_an_old_failure_is_not_the_runs_result():
    assert not judge(seen("FAILED_CONNECT", run=100, success=50)).done


@pytest.mark.parametrize(
    "code", ["CONNECTING", "AUTHENTICATING", "SUBMITTING", "PROCESSING", "NEVER_REPLICATED"]
)
def test_a_run_in_progress_is_waited_for(code):
    assert not judge(seen(code)).done


def test_a_run_that_never_finishes_times_out_with_its_last_status():
    verdict = judge(seen("PROCESSING"), timed_out=True)
    assert verdict.done and not verdict.succeeded
    assert verdict.status_code == "PROCESSING"
    assert "did not reach SUCCEEDED within 3600 s (last status PROCESSING)" in verdict.reason


def test_a_partner_removed_again_while_we_wait_fails_the_restore():
    verdict = judge(None)
    assert verdict.done and not verdict.succeeded
    assert "no longer a replication partner" in verdict.reason


def test_polls_back_off_up_to_a_cap():
    delays = [poll_delay(n, initial_s=5, maximum_s=60) for n in range(6)]
    assert delays == [5, 10, 20, 40, 60, 60]
    assert poll_delay(10_000, initial_s=5, maximum_s=60) == 60
