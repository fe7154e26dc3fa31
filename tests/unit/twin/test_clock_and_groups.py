from __future__ import annotations

import pytest

from sepm_twin.clock import SimClock
from sepm_twin.groups import SettingsError, default_settings, merge_settings, policy_serial

pytestmark = pytest.mark.unit


class FakeRealTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_runs_speed_times_real_time_and_can_skip_ahead() -> None:
    real = FakeRealTime()
    clock = SimClock(start_ms=1_000_000, speed=3600, real_now=real)
    real.now += 1.0
    assert clock.now_ms() == 1_000_000 + 3_600_000
    clock.advance(60)
    assert clock.now_ms() == 1_000_000 + 3_660_000


def test_changing_speed_keeps_the_time_already_elapsed() -> None:
    real = FakeRealTime()
    clock = SimClock(start_ms=0, speed=10, real_now=real)
    real.now += 2.0
    clock.set_speed(0)
    real.now += 100.0
    assert clock.now_ms() == 20_000


def test_clock_never_goes_back() -> None:
    with pytest.raises(ValueError):
        SimClock(start_ms=0, speed=1).advance(-1)


def test_policy_serial_has_sepm_format() -> None:
    # 2012-01-30 23:50:54.284 GMT, the example of SEPM's own documentation.
    assert policy_serial("A3AF0123" + "0" * 24, 1327967454284) == "A3AF-01/30/2012 23:50:54 284"
    assert policy_serial("A3AF" + "0" * 28, 1327967454004).endswith(" 004")


def test_patch_merges_known_settings_and_keeps_the_rest() -> None:
    current = default_settings(secure=True, push=False, heartbeat_s=300)
    merged = merge_settings(
        current,
        {
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": False}}
            }
        },
    )
    assert merged["general_settings"]["security_settings"]["secure_communications"] is False
    assert merged["communication_settings"] == current["communication_settings"]
    assert current["general_settings"]["security_settings"]["secure_communications"] is True


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"configuration": 1},
        {"config": {}},
        {
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": "no"}}
            }
        },
        {"configuration": {"communication_settings": {"mode": "SOMETIMES"}}},
        {"configuration": {"communication_settings": {"pull_mode_heartbeat_freq_in_seconds": 0}}},
        {
            "configuration": {
                "communication_settings": {"pull_mode_heartbeat_freq_in_seconds": True}
            }
        },
        {"configuration": {"general_settings": 5}},
        # Fields GroupSettingsConfiguration does not have (the twin once invented these).
        {"configuration": {"communication_settings": {"push_mode_heartbeat_freq_in_seconds": 60}}},
        {"configuration": {"communication_settings": {"download_randomization_enabled": True}}},
        {"configuration": {"general_settings": {"security_settings": {"stopped_mode": "MAYBE"}}}},
    ],
)
def test_malformed_settings_are_rejected(body: object) -> None:
    with pytest.raises(SettingsError):
        merge_settings(default_settings(secure=True, push=False, heartbeat_s=300), body)


def test_the_example_scenario_is_valid() -> None:
    from pathlib import Path

    from sepm_twin.scenario import load_scenario

    path = Path(__file__).parents[3] / "simulator" / "scenarios" / "example.yaml"
    scenario = load_scenario(path)
    assert [s.name for s in scenario.sites] == ["site-a", "site-b"]
    assert scenario.sites[0].groups[0].locations == ["Default", "Remote"]


def test_the_estate_scenario_has_domains_inheritance_versions_and_stale_clients() -> None:
    from pathlib import Path

    from sepm_twin.scenario import load_scenario

    path = Path(__file__).parents[3] / "simulator" / "scenarios" / "estate.yaml"
    groups = {g.name: g for g in load_scenario(path).sites[0].groups}
    kiosks = groups["My Company\\Workstations\\Floor 1\\Kiosks"]
    assert kiosks.inherits and kiosks.offline is not None and kiosks.offline.since_days == 45
    assert groups["My Company\\Paris"].domain == "Europe"
    assert groups["My Company\\Workstations"].agent_versions["14.3.7388.4000"] == 0.2


def test_designs_minimum_scenario_is_accepted() -> None:
    from sepm_twin.scenario import load_scenario

    # The minimum scenario format (simulator/README.md), verbatim in substance.
    scenario = load_scenario(
        {
            "clock": {"speed": 3600},
            "sites": [
                {
                    "name": "site-a",
                    "version": "14.3.9000",
                    "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
                    "replication_partners": ["site-b"],
                    "groups": [
                        {
                            "name": "My Company\\Default",
                            "clients": 500,
                            "mode": "pull",
                            "heartbeat_s": 300,
                            "offline": {"fraction": 0.02, "days": 10},
                        }
                    ],
                },
                {
                    "name": "site-b",
                    "version": "14.2.1000",
                    "servers": [{"name": "sepm-b1"}],
                    "replication_partners": ["site-a"],
                    "groups": [{"name": "My Company\\Servers", "clients": 200, "mode": "push"}],
                },
            ],
        }
    )
    assert [g.inherits for s in scenario.sites for g in s.groups] == [False, False]
