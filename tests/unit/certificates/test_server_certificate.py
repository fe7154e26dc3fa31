"""UpdateServerCertificate and RollbackServerCertificate against a fake host and probe."""

from __future__ import annotations

import pytest

from certificates.service_layer.served_certificate import Verifier
from certificates.service_layer.server_certificate import (
    rollback_server_certificate,
    update_server_certificate,
)
from certificates.service_layer.store import StoredBundle
from certrotate_shared.hostops import CertificateBundle, HostOperationError
from certrotate_shared.messages.certificates import (
    RollbackServerCertificate,
    ServerCertificateRollbackFailed,
    ServerCertificateRolledBack,
    ServerCertificateUpdated,
    ServerCertificateUpdateFailed,
    UpdateServerCertificate,
)
from certrotate_shared.sepm import SepmError
from tests.unit.certificates.fakes import NEW, OLD, FakeHost, FakeStore, new_bundle, server, site

pytestmark = pytest.mark.unit


def update(version: str = "14.3.9000", key: str = "saga-1:update:1") -> UpdateServerCertificate:
    return UpdateServerCertificate(
        idempotency_key=key,
        site=site(version),
        server=server(version),
        bundle_ref="bnd_1",
        expected_fingerprint=NEW,
    )


def verifier(host: FakeHost, timeout: float = 0.0) -> Verifier:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    return Verifier(
        host.probe, timeout_s=timeout, interval_s=1.0, sleep=sleep, monotonic=lambda: clock[0]
    )


def sepm_reports(version: str | None = "14.3.25029.9000", **extra: str):
    """The /version answer of the site's SEPM; None: SEPM cannot be reached."""

    async def read() -> dict:
        if version is None:
            raise SepmError("cannot reach sepm-a1: connection refused")
        return {"API_SEQUENCE": "240604011", "API_VERSION": version, "version": version, **extra}

    return read


async def do_update(
    host: FakeHost,
    store: FakeStore,
    command: UpdateServerCertificate | None = None,
    *,
    reported: str | None = "14.3.25029.9000",
    timeout: float = 0.0,
):
    return await update_server_certificate(
        command or update(),
        saga_id="saga-1",
        hostops=host,
        store=store,
        verifier=verifier(host, timeout=timeout),
        sepm_version=sepm_reports(reported),
    )


async def do_rollback(
    host: FakeHost, command: RollbackServerCertificate, *, reported: str | None = "14.3.9000"
):
    return await rollback_server_certificate(
        command, hostops=host, verifier=verifier(host), sepm_version=sepm_reports(reported)
    )


async def test_update_backs_up_installs_restarts_in_order_and_verifies_every_port() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store)
    assert isinstance(event, ServerCertificateUpdated)
    assert host.calls == [
        "backup",
        "install",
        "restart:semsrv",
        "restart:semwebsrv",
        "restart:semapisrv",
    ]
    assert event.ports_verified == {"8443": NEW, "8446": NEW, "443": NEW}
    assert event.previous_fingerprint == OLD and event.backup_ref == "backup-1"


async def test_before_14_semapisrv_is_not_restarted() -> None:
    host, store = FakeHost(version="12.1.6000"), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store, update("12.1.6000"), reported="12.1.6000")
    assert isinstance(event, ServerCertificateUpdated)
    assert host.calls == ["backup", "install", "restart:semsrv", "restart:semwebsrv"]


async def test_already_served_means_nothing_is_done() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    await do_update(host, store)
    host.calls.clear()
    again = await do_update(host, store, update(key="saga-1:update:2"))
    assert isinstance(again, ServerCertificateUpdated)
    assert host.calls == []
    assert again.backup_ref == "backup-1" and again.previous_fingerprint == OLD


@pytest.mark.parametrize(
    ("operation", "stage"),
    [("backup", "backup"), ("install", "install"), ("restart:semwebsrv", "restart")],
)
async def test_a_failing_step_reports_its_stage(operation: str, stage: str) -> None:
    error = HostOperationError(f"{operation} refused by the host", retryable=True)
    host, store = FakeHost(fail={operation: error}), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store)
    assert isinstance(event, ServerCertificateUpdateFailed)
    assert event.stage == stage and event.retryable
    assert "refused by the host" in event.reason
    assert event.backup_ref == (None if stage == "backup" else "backup-1")
    # What a rollback of this server must bring back: its own certificate from before.
    assert event.previous_fingerprint == (None if stage == "backup" else OLD)


async def test_verify_fails_when_a_port_keeps_serving_the_old_certificate() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    original = host.restart_service

    async def api_not_reloading(server, service, *, key):
        if service != "semapisrv":
            await original(server, service, key=key)

    host.restart_service = api_not_reloading  # type: ignore[method-assign]
    event = await do_update(host, store, timeout=5)
    assert isinstance(event, ServerCertificateUpdateFailed) and event.stage == "verify"
    assert "port 8446" in event.reason and "8443" not in event.reason


async def test_verify_waits_for_ports_closed_while_the_services_restart() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    real_probe, refusals = host.probe, [2]

    async def restarting(server):
        if refusals[0]:
            refusals[0] -= 1
            raise ConnectionRefusedError("port 8446 closed")
        return await real_probe(server)

    host.probe = restarting  # type: ignore[method-assign]
    event = await do_update(host, store, timeout=5)
    assert isinstance(event, ServerCertificateUpdated)
    assert event.ports_verified == {"8443": NEW, "8446": NEW, "443": NEW}


async def test_a_tls_port_that_cannot_be_observed_is_not_verified() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    real_probe = host.probe

    async def without_8446(server):
        return {p: f for p, f in (await real_probe(server)).items() if p != "8446"}

    host.probe = without_8446  # type: ignore[method-assign]
    event = await do_update(host, store)
    assert isinstance(event, ServerCertificateUpdateFailed) and event.stage == "verify"
    assert "port 8446 not observed" in event.reason


async def test_a_bundle_holding_another_certificate_is_not_installed() -> None:
    other = StoredBundle(CertificateBundle("pkcs12", b"c" * 64, "pw"), "c" * 64)
    host, store = FakeHost(), FakeStore({"bnd_1": other})
    event = await do_update(host, store)
    assert isinstance(event, ServerCertificateUpdateFailed)
    assert event.stage == "install" and not event.retryable
    assert "not the expected" in event.reason
    assert host.calls == [] and host.installed == OLD


async def test_a_purged_bundle_fails_the_install_for_good() -> None:
    host, store = FakeHost(), FakeStore()
    event = await do_update(host, store)
    assert isinstance(event, ServerCertificateUpdateFailed)
    assert event.stage == "install" and not event.retryable
    assert host.calls == []


async def test_a_retry_after_install_keeps_the_first_backup() -> None:
    error = HostOperationError("semsrv failed to start", retryable=True)
    host, store = FakeHost(fail={"restart:semsrv": error}), FakeStore({"bnd_1": new_bundle()})
    assert isinstance(await do_update(host, store), ServerCertificateUpdateFailed)
    host.fail.clear()
    event = await do_update(host, store, update(key="saga-1:update:2"))
    assert isinstance(event, ServerCertificateUpdated)
    # The backup taken before the first install (the old certificate) is the one kept.
    assert host.calls.count("backup") == 1
    assert event.previous_fingerprint == OLD and host.backups[event.backup_ref] == OLD


async def test_rollback_restores_and_verifies_the_old_certificate() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    updated = await do_update(host, store)
    assert isinstance(updated, ServerCertificateUpdated)
    host.calls.clear()
    command = RollbackServerCertificate(
        idempotency_key="saga-1:rollback:1",
        site=site(),
        server=server(),
        backup_ref=updated.backup_ref,
        expected_fingerprint=OLD,
    )
    event = await do_rollback(host, command)
    assert isinstance(event, ServerCertificateRolledBack) and event.fingerprint == OLD
    assert host.served == dict.fromkeys(("8443", "8446", "443"), OLD)
    assert host.calls[0] == "restore"
    host.calls.clear()
    again = await do_rollback(host, command)
    assert isinstance(again, ServerCertificateRolledBack) and host.calls == []


async def test_rollback_failure_is_reported() -> None:
    host = FakeHost(fail={"restore": HostOperationError("no such backup", retryable=False)})
    host.served = dict.fromkeys(host.served, NEW)
    command = RollbackServerCertificate(
        idempotency_key="k",
        site=site(),
        server=server(),
        backup_ref="gone",
        expected_fingerprint=OLD,
    )
    event = await do_rollback(host, command)
    assert isinstance(event, ServerCertificateRollbackFailed) and not event.retryable
    assert "no such backup" in event.reason


def rollback_command(registered: str = "14.3.9000", **server_fields) -> RollbackServerCertificate:
    return RollbackServerCertificate(
        idempotency_key="saga-1:rollback:1",
        site=site(registered),
        server=server(registered).model_copy(update=server_fields),
        backup_ref="backup-1",
        expected_fingerprint=OLD,
    )


# -- restarts follow the version SEPM reports (issue 9, smaller ones) -------------------------


@pytest.mark.parametrize("registered", ["v14.3", "14", "V14.2 RU1", "", "unknown"])
async def test_restarts_follow_the_version_sepm_reports_not_the_registered_one(registered):
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store, update(registered), reported="14.3.25029.9000")
    assert isinstance(event, ServerCertificateUpdated)
    assert "restart:semapisrv" in host.calls


async def test_a_server_older_than_registered_does_not_get_a_service_it_lacks(caplog) -> None:
    host, store = FakeHost(version="12.1.6000"), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store, update("14.3.9000"), reported="12.1.6000")
    assert isinstance(event, ServerCertificateUpdated)
    assert "restart:semapisrv" not in host.calls
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "14.3.9000" in warning and "12.1.6000" in warning and "sepm-a1" in warning


async def test_an_update_that_cannot_read_sepms_version_changes_nothing() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store, reported=None)
    assert isinstance(event, ServerCertificateUpdateFailed) and event.retryable
    assert "version" in event.reason and "connection refused" in event.reason
    assert host.calls == [] and host.installed == OLD


async def test_an_unreadable_version_on_both_sides_refuses_the_update() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    event = await do_update(host, store, update("unknown"), reported="not a version")
    assert isinstance(event, ServerCertificateUpdateFailed) and not event.retryable
    assert "not a version" in event.reason
    assert host.calls == []


async def test_a_rollback_without_sepm_falls_back_to_the_registered_version() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    assert isinstance(await do_update(host, store), ServerCertificateUpdated)
    host.calls.clear()
    event = await do_rollback(host, rollback_command("v14.3"), reported=None)
    assert isinstance(event, ServerCertificateRolledBack)
    assert host.calls == ["restore", "restart:semsrv", "restart:semwebsrv", "restart:semapisrv"]


# -- a server registered without TLS ports (issue 9, smaller ones) ------------------------------


async def test_a_server_without_tls_ports_is_never_reported_updated() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    host.served = {}  # nothing to probe: the old code called that "already served"
    bare = update()
    bare = bare.model_copy(update={"server": bare.server.model_copy(update={"ports": {}})})
    event = await do_update(host, store, bare)
    assert isinstance(event, ServerCertificateUpdateFailed) and not event.retryable
    assert "TLS ports" in event.reason and "sepm-a1" in event.reason
    assert host.calls == []


async def test_a_server_with_only_the_plain_http_port_is_refused_too() -> None:
    host, store = FakeHost(), FakeStore({"bnd_1": new_bundle()})
    plain = update()
    plain = plain.model_copy(
        update={"server": plain.server.model_copy(update={"ports": {"8014": 8014}})}
    )
    event = await do_update(host, store, plain)
    assert isinstance(event, ServerCertificateUpdateFailed) and not event.retryable
    assert host.calls == []


async def test_a_rollback_of_a_server_without_tls_ports_is_never_reported_done() -> None:
    host = FakeHost()
    host.served = {}
    event = await do_rollback(host, rollback_command(ports={}))
    assert isinstance(event, ServerCertificateRollbackFailed) and not event.retryable
    assert "TLS ports" in event.reason
    assert host.calls == []
