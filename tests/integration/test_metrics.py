"""/metrics of every service while the four real services rotate a twin site (embedded stack in
this process, twin in this process): the numbers an operator's dashboards read move with it."""

from __future__ import annotations

import pytest

from certrotate_shared.metrics import sample_sum
from tests.integration.embedded_twin import Live, eventually, live

pytestmark = pytest.mark.integration

__all__ = ["live"]  # the fixture


async def test_a_rotation_moves_the_numbers_of_every_service(live: Live) -> None:
    before = await live.metrics()
    rotation_id = await live.rotate("site-a")

    async def completed() -> bool:
        return (await live.state(rotation_id))["state"] == "completed"

    await eventually(completed)
    after = await live.metrics()

    def moved(name: str, **labels: str) -> float:
        return sample_sum(after, name, **labels) - sample_sum(before, name, **labels)

    assert sample_sum(after, "certrotate_rotations", state="completed") == 1
    assert sample_sum(after, "certrotate_rotations", state="running") == 0
    # The seven steps, each timed once as it ended (clock seconds, whatever their length).
    for step in ("break_replication", "disable_verification", "restore_replication"):
        assert moved("certrotate_rotation_step_duration_seconds_count", step=step) >= 1, step
    assert moved("certrotate_rotation_step_duration_seconds_count", step="update_certificate") == 2
    # Two servers: each backed up, installed and restarted through the twin's host agent.
    for kind in ("backup_certificate", "install_certificate"):
        assert (
            moved("certrotate_host_operations_total", kind=kind, driver="twin", outcome="ok") == 2
        )
    assert moved("certrotate_host_operations_total", kind="restart_service", outcome="ok") == 6
    assert moved("certrotate_host_operations_total", outcome="failed") == 0
    # SEPM's API was called for the site, and answered.
    assert moved("certrotate_sepm_requests_total", site="site-a", status="2xx") > 0
    assert moved("certrotate_sepm_request_duration_seconds_count", site="site-a") > 0
    # Commands went out through the orchestrator's outbox and were handled by each worker.
    assert moved("certrotate_outbox_published_total", service="orchestrator") >= 10
    for service, command in (
        ("replication", "BreakReplication"),
        ("certificates", "UpdateServerCertificate"),
        ("client-monitor", "AwaitPolicyPropagation"),
        ("orchestrator", "ServerCertificateUpdated"),
    ):
        assert moved("certrotate_messages_handled_total", service=service, type=command) >= 1

    # Nothing left behind: outboxes drained, every consumer caught up, no dead letter.
    async def drained() -> bool:
        now = await live.metrics()
        return all(
            sample_sum(now, "certrotate_outbox_messages", service=s) == 0
            and sample_sum(now, "certrotate_consumer_lag_messages", service=s) == 0
            for s in live.stack.runtimes
        )

    await eventually(drained)
    final = await live.metrics()
    for service in live.stack.runtimes:
        assert sample_sum(final, "certrotate_metrics_source_up", source=service) == 1
    assert sample_sum(final, "certrotate_dead_letters", state="open") == 0
    assert sample_sum(final, "certrotate_verification_off_seconds", site="site-a") == 0
    # Each worker's /metrics answers too (one process here: the same numbers).
    for service in ("replication", "certificates", "client-monitor"):
        text = await live.metrics(service)
        assert sample_sum(text, "certrotate_rotations", state="completed") == 1


async def test_a_wait_shows_its_exposure_and_the_clients_at_risk(live: Live) -> None:
    rotation_id = await live.rotate("site-c")

    seen: list[float] = []

    async def only_the_absent_at_risk() -> str | None:
        # Every client is at risk until it pulls the verification-off policy; the online ones
        # do within minutes of clock time, four of the forty are away for twenty days.
        text = await live.metrics()
        seen.append(
            sample_sum(text, "certrotate_propagation_clients", site="site-c", status="at_risk")
        )
        return text if seen[-1] == 4 else None

    text = await eventually(only_the_absent_at_risk)
    assert max(seen) >= 4  # the gauge followed the scans down, never up past the fleet
    assert max(seen) <= 40
    assert (
        sample_sum(text, "certrotate_propagation_clients", site="site-c", status="reached")
        + sample_sum(text, "certrotate_propagation_clients", site="site-c", status="pending")
        == 40
    )
    # Verification is off at site-c (and nowhere else) while the rotation waits.
    assert sample_sum(text, "certrotate_verification_off_seconds", site="site-c") > 0
    assert sample_sum(text, "certrotate_verification_off_seconds", site="site-a") == 0
    assert sample_sum(text, "certrotate_rotations_active", step="await_disable_propagation") == 1
    assert sample_sum(text, "certrotate_timers") >= 1
    assert (await live.state(rotation_id))["state"] in ("running", "paused")


async def test_metrics_refuse_a_scrape_without_the_internal_token(live: Live) -> None:
    for service in live.stack.runtimes:
        refused = await live.scrape(service)
        assert refused.status_code == 401, service
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "metrics_unauthorized"
        wrong = await live.scrape(service, Authorization="Bearer not-the-internal-token")
        assert wrong.status_code == 401
        # Prometheus' `authorization: {credentials: ...}` sends the token as a bearer token.
        bearer = await live.scrape(service, Authorization=f"Bearer {live.internal_token}")
        assert bearer.status_code == 200
        assert bearer.headers["content-type"].startswith("text/plain")
        assert "certrotate_rotations" in bearer.text
