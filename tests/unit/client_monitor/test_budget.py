"""The SEPM call budget (issue 16 item 4): a watch never makes more calls a minute than the
site's budget, and a quiet watch can spend a burst at once."""

import pytest

from client_monitor.domain.budget import CallBudget

pytestmark = pytest.mark.unit


def test_a_burst_goes_at_once_then_calls_are_spaced_to_the_rate():
    budget = CallBudget(per_minute=40, burst=10)
    assert [budget.wait(0.0) for _ in range(10)] == [0.0] * 10
    assert budget.wait(0.0) == pytest.approx(1.5)  # 60 s / 40 calls


def test_calls_over_an_hour_stay_inside_the_budget():
    budget, now, made = CallBudget(per_minute=50, burst=10), 0.0, []
    while now < 3600:  # a scan loop that asks as fast as it may
        now += budget.wait(now)
        made.append(now)
    for start in range(0, 3600, 60):
        in_minute = [t for t in made if start <= t < start + 60]
        assert len(in_minute) <= 50 + 10
    assert 50 * 60 <= len(made) <= 50 * 60 + 11


def test_an_idle_budget_refills_only_up_to_its_burst():
    budget = CallBudget(per_minute=60, burst=5)
    budget.wait(0.0)
    assert [budget.wait(3600.0) for _ in range(5)] == [0.0] * 5
    assert budget.wait(3600.0) == pytest.approx(1.0)
