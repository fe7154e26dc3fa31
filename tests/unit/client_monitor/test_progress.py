from datetime import timedelta

import pytest

from client_monitor.domain.progress import ProgressThrottle, RateTracker
from tests.unit.client_monitor.fakes import T0

pytestmark = pytest.mark.unit


def test_forecast_extrapolates_the_observed_rate_of_clients_reaching():
    rates = RateTracker(window=5)
    rates.add(T0, 100)
    rates.add(T0 + timedelta(hours=1), 400)  # 300 per hour
    now = T0 + timedelta(hours=1)
    assert rates.forecast(remaining=600, now=now) == now + timedelta(hours=2)
    assert rates.forecast(remaining=0, now=now) == now


def test_no_forecast_without_progress_or_with_a_single_scan():
    rates = RateTracker()
    rates.add(T0, 10)
    assert rates.forecast(remaining=5, now=T0) is None
    rates.add(T0 + timedelta(hours=1), 10)
    assert rates.forecast(remaining=5, now=T0 + timedelta(hours=1)) is None


def test_the_rate_follows_the_recent_window():
    rates = RateTracker(window=2)
    rates.add(T0, 0)
    rates.add(T0 + timedelta(hours=1), 1000)
    rates.add(T0 + timedelta(hours=2), 1010)  # slowed down to 10 an hour
    assert rates.per_second() == pytest.approx(10 / 3600)


def test_progress_is_reported_at_most_every_interval_and_on_a_one_point_change():
    throttle = ProgressThrottle(min_interval_s=5, min_change_percent=1.0)
    assert throttle.due(10.0, real_now=0)
    throttle.reported(10.0, real_now=0)
    assert not throttle.due(30.0, real_now=4)  # too soon
    assert not throttle.due(10.5, real_now=60)  # too small a change
    assert throttle.due(11.0, real_now=5)
