"""The work runner's settings have one name in every worker service; deployments configured
with the names each service used before keep working, and are told once what to rename."""

from __future__ import annotations

import logging

import pytest

import certrotate_shared.renamed_settings as renamed_settings
from certificates.settings import Settings as Certificates
from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.settings import ServiceSettings, load_settings
from client_monitor.settings import Settings as ClientMonitor
from replication.settings import Settings as Replication

pytestmark = pytest.mark.unit

RENAMED = [
    (Certificates, "CERTROTATE_CERTIFICATES_JOB_LEASE_S", "work_lease_s"),
    (Certificates, "CERTROTATE_CERTIFICATES_JOB_POLL_INTERVAL_S", "work_poll_s"),
    (Certificates, "CERTROTATE_CERTIFICATES_MAX_CONCURRENT_JOBS", "work_concurrency"),
    (Replication, "CERTROTATE_REPLICATION_LEASE_S", "work_lease_s"),
    (Replication, "CERTROTATE_REPLICATION_WORKER_POLL_REAL_S", "work_poll_s"),
    (Replication, "CERTROTATE_REPLICATION_WORKER_CONCURRENCY", "work_concurrency"),
    (ClientMonitor, "CERTROTATE_CLIENT_MONITOR_LEASE_S", "work_lease_s"),
    (ClientMonitor, "CERTROTATE_CLIENT_MONITOR_WATCH_POLL_S", "work_poll_s"),
]


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("CERTROTATE_INTERNAL_TOKEN", "an-internal-token-of-some-length")
    # Each old name is reported once per process: start every test as a fresh process.
    monkeypatch.setattr(renamed_settings, "_REPORTED", set())


def deprecations(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if name in r.getMessage()]


@pytest.mark.parametrize(("cls", "old", "field"), RENAMED)
def test_an_old_variable_still_configures_the_runner_and_is_reported_once(
    monkeypatch, caplog, cls: type[ServiceSettings], old: str, field: str
):
    monkeypatch.setenv(old, "7")
    caplog.set_level(logging.WARNING)
    first, again = load_settings(cls), load_settings(cls)
    assert getattr(first, field) == 7
    assert getattr(again, field) == 7
    reported = deprecations(caplog, old)
    new = f"CERTROTATE_{cls.service.upper().replace('-', '_')}_{field.upper()}"
    assert len(reported) == 1, reported
    assert new in reported[0] and "deprecated" in reported[0]


@pytest.mark.parametrize(("cls", "old", "field"), RENAMED)
def test_the_new_variable_wins_over_the_old_one(
    monkeypatch, caplog, cls: type[ServiceSettings], old: str, field: str
):
    monkeypatch.setenv(old, "7")
    monkeypatch.setenv(f"CERTROTATE_{cls.service.upper().replace('-', '_')}_{field.upper()}", "9")
    assert getattr(load_settings(cls), field) == 9


def test_an_old_variable_shared_by_every_service_still_applies(monkeypatch, caplog):
    # CERTROTATE_LEASE_S used to set the replication and client-monitor leases at once.
    monkeypatch.setenv("CERTROTATE_LEASE_S", "45")
    monkeypatch.setenv("CERTROTATE_CLIENT_MONITOR_WORK_LEASE_S", "50")
    caplog.set_level(logging.WARNING)
    assert load_settings(Replication).work_lease_s == 45
    assert load_settings(ClientMonitor).work_lease_s == 50  # its own variable wins
    assert len(deprecations(caplog, "CERTROTATE_LEASE_S")) == 1


def test_every_worker_service_names_its_runner_settings_alike():
    for cls in (Certificates, Replication, ClientMonitor):
        assert {"work_lease_s", "work_poll_s"} <= set(cls.model_fields), cls.service
    assert "work_concurrency" in Certificates.model_fields
    assert "work_concurrency" in Replication.model_fields


def test_unset_runner_settings_keep_each_service_s_defaults():
    assert (load_settings(Certificates).work_lease_s, load_settings(Certificates).work_poll_s) == (
        60.0,
        0.5,
    )
    assert (load_settings(Replication).work_lease_s, load_settings(Replication).work_poll_s) == (
        120.0,
        0.25,
    )
    assert (
        load_settings(ClientMonitor).work_lease_s,
        load_settings(ClientMonitor).work_poll_s,
    ) == (30.0, 0.5)
