from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domain.state import RotationOptions
from orchestrator.service_layer.rotation_options import in_clock_time, with_operator_defaults
from orchestrator.settings import Settings

pytestmark = pytest.mark.unit


def settings(**values: Any) -> Settings:
    return Settings(
        master_key="A" * 43 + "=",
        admin_token="an-admin-token-long-enough",
        internal_token="an-internal-token-long-enough",
        **values,
    )


def test_options_a_request_leaves_out_come_from_the_operators_settings():
    configured = settings(stale_horizon_days=7, max_wait_days=3, retry_max_attempts=9)
    options = with_operator_defaults(RotationOptions(), configured)
    assert options.stale_horizon_days == 7
    assert options.max_wait_days == 3
    assert options.retry.max_attempts == 9


def test_what_a_request_says_wins_over_the_settings():
    configured = settings(stale_horizon_days=7, max_wait_days=3)
    requested = RotationOptions(stale_horizon_days=45, require_approval=True)
    options = with_operator_defaults(requested, configured)
    assert options.stale_horizon_days == 45
    assert options.require_approval is True
    assert options.max_wait_days == 3


def test_answer_deadlines_come_from_the_settings_and_scale_with_an_accelerated_clock():
    configured = settings(answer_deadline_sepm_seconds=120, answer_resends=4)
    options = with_operator_defaults(RotationOptions(), configured)
    assert options.answer_deadlines.sepm_call_seconds == 120
    assert options.answer_deadlines.resends == 4
    # A rehearsal against the twin at 3600x: workers still take real seconds.
    fast = in_clock_time(options, 3600)
    assert fast.answer_deadlines.sepm_call_seconds == 120 * 3600
    assert fast.answer_deadlines.host_operation_seconds == 1800 * 3600
    assert fast.answer_deadlines.resends == 4
