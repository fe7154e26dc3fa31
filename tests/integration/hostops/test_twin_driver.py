"""The twin driver against a real twin: installs show up in real TLS handshakes, failures
carry SEPM's words, and a repeated idempotency key acts once."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certrotate_shared.hostops import (
    CertificateBundle,
    HostOperationError,
    host_operations_for,
    services_to_restart,
)
from certrotate_shared.messages.common import ServerTarget
from certrotate_shared.tlsprobe import TlsProbeError, served_fingerprint, served_fingerprints
from tests.integration.hostops.conftest import LiveTwin

pytestmark = pytest.mark.integration

PASSWORD = "S3cret-keystore-pass!"


def pkcs12_bundle(issued: dict[str, object], password: str = PASSWORD) -> CertificateBundle:
    """A PKCS#12 file built here with `cryptography` from a certificate the twin's CA signed."""
    install = issued["install"]
    assert isinstance(install, dict)
    cert = x509.load_pem_x509_certificate(base64.b64decode(install["data_b64"]))
    key = serialization.load_pem_private_key(base64.b64decode(install["key_b64"]), None)
    data = pkcs12.serialize_key_and_certificates(
        b"sepm",
        key,  # type: ignore[arg-type]
        cert,
        None,
        serialization.BestAvailableEncryption(password.encode()),
    )
    return CertificateBundle(format="pkcs12", data=data, password=password)


async def test_install_and_restart_serve_the_new_certificate_on_every_tls_port(
    live_twin: LiveTwin,
) -> None:
    site = live_twin.site("site-a")
    server = site.server("sepm-a1")
    before = await served_fingerprints(server)
    old = before["443"]
    assert set(before) == {"8443", "8446", "443", "8445"} and set(before.values()) == {old}

    issued = await live_twin.issue_pem(server.hostnames)
    ops = host_operations_for(site, None)
    try:
        backup = await ops.backup_certificate(server, key="saga-1:backup:sepm-a1")
        assert backup.fingerprint == old
        await ops.install_certificate(server, pkcs12_bundle(issued), key="saga-1:install:sepm-a1")
        # Installed, not yet loaded: the ports still present the old certificate.
        assert set((await served_fingerprints(server)).values()) == {old}
        for service in services_to_restart(site.version):
            await ops.restart_service(server, service, key=f"saga-1:restart:sepm-a1:{service}")
        assert await served_fingerprints(server) == dict.fromkeys(
            ("8443", "8446", "443", "8445"), issued["fingerprint_sha256"]
        )
        # The other server of the site is untouched.
        other = await served_fingerprints(site.server("sepm-a2"))
        assert issued["fingerprint_sha256"] not in other.values()

        # Rollback: restore the backup, restart, and the old certificate is back everywhere.
        await ops.restore_certificate(server, backup.backup_ref, key="saga-1:restore:sepm-a1")
        for service in services_to_restart(site.version):
            await ops.restart_service(server, service, key=f"saga-1:rb-restart:{service}")
        assert await served_fingerprints(server) == dict.fromkeys(
            ("8443", "8446", "443", "8445"), old
        )
    finally:
        await ops.close()


async def test_a_wrong_keystore_password_is_refused_with_sepms_message(
    live_twin: LiveTwin,
) -> None:
    site = live_twin.site("site-a")
    server = site.server("sepm-a2")
    issued = await live_twin.issue_pem(server.hostnames)
    good = pkcs12_bundle(issued)
    wrong = CertificateBundle(format="pkcs12", data=good.data, password="not-the-password")
    ops = host_operations_for(site, None)
    try:
        with pytest.raises(HostOperationError) as caught:
            await ops.install_certificate(server, wrong, key="saga-2:install:sepm-a2")
        error = caught.value
        assert "Keystore was tampered with, or password was incorrect" in str(error)
        assert error.retryable is False
        assert error.code == "WRONG_PASSWORD"
        assert "not-the-password" not in str(error) and PASSWORD not in str(error)

        truncated = CertificateBundle(format="pkcs12", data=good.data[:200], password=PASSWORD)
        with pytest.raises(HostOperationError, match="Invalid keystore file") as caught:
            await ops.install_certificate(server, truncated, key="saga-2:install-2:sepm-a2")
        assert caught.value.retryable is False
    finally:
        await ops.close()
    # Nothing changed on the server.
    assert (
        live_twin.server_view("sepm-a2")["installed_fingerprint_sha256"]
        != (issued["fingerprint_sha256"])
    )
    log = await live_twin.operations()
    assert all(PASSWORD not in str(entry) for entry in log)


async def test_a_repeated_idempotency_key_acts_once(live_twin: LiveTwin) -> None:
    site = live_twin.site("site-a")
    server = site.server("sepm-a1")
    issued = await live_twin.issue_pem(server.hostnames)
    bundle = pkcs12_bundle(issued)
    ops = host_operations_for(site, None)
    try:
        first = await ops.backup_certificate(server, key="saga-3:backup")
        again = await ops.backup_certificate(server, key="saga-3:backup")
        assert again == first  # the same backup, not a second one
        for _ in range(3):
            await ops.install_certificate(server, bundle, key="saga-3:install")
            await ops.restart_service(server, "semwebsrv", key="saga-3:restart:semwebsrv")
        await ops.delete_replication_partner(site, "site-b", key="saga-3:break")
        await ops.delete_replication_partner(site, "site-b", key="saga-3:break")
    finally:
        await ops.close()

    log = await live_twin.operations()
    acted = [e for e in log if e["idempotency_key"].startswith("saga-3:") and not e["replay"]]
    # The swap: each store, then SEPM's record, each under the install's key (a twin without
    # per-store operations gets one install: tests/unit/hostops/test_twin_driver.py).
    swap = [
        e
        for e in acted
        if e["operation"].startswith("certificate.") and "install" in e["idempotency_key"]
    ]
    assert [(e["operation"], e["idempotency_key"]) for e in swap] == [
        ("certificate.store.tomcat", "saga-3:install:tomcat"),
        ("certificate.store.apache", "saga-3:install:apache"),
        ("certificate.record", "saga-3:install:record"),
    ]
    acted = [e for e in acted if e not in swap]
    assert sorted((e["operation"], e["idempotency_key"]) for e in acted) == [
        ("certificate.backup", "saga-3:backup"),
        ("replication.partner.delete", "saga-3:break"),
        ("service.restart", "saga-3:restart:semwebsrv"),
    ]
    assert len(live_twin.server_view("sepm-a1")["backups"]) == 1
    assert (
        await served_fingerprint("127.0.0.1", server.ports["443"]) == issued["fingerprint_sha256"]
    )


async def test_replication_partners_are_deleted_and_re_added(live_twin: LiveTwin) -> None:
    site = live_twin.site("site-a")
    ops = host_operations_for(site, None)
    try:
        await ops.delete_replication_partner(site, "site-b", key="saga-4:break")
        assert live_twin.twin.topology()["sites"][0]["replication_partners"] == []
        await ops.add_replication_partner(site, "site-b", key="saga-4:restore")
        assert live_twin.twin.topology()["sites"][0]["replication_partners"] == ["site-b"]
        # Re-adding under a new key is refused in SEPM's terms, and is not worth retrying.
        with pytest.raises(HostOperationError) as caught:
            await ops.add_replication_partner(site, "site-b", key="saga-4:restore-again")
        assert caught.value.code == "ALREADY_PARTNERS" and not caught.value.retryable
        with pytest.raises(HostOperationError, match="No site named 'site-z'"):
            await ops.delete_replication_partner(site, "site-z", key="saga-4:bad")
    finally:
        await ops.close()


async def test_host_failures_are_retryable_and_name_the_service(live_twin: LiveTwin) -> None:
    site = live_twin.site("site-a")
    server = site.server("sepm-a2")
    await live_twin.inject(
        kind="service_start_failure", server="sepm-a2", service="semwebsrv", count=1
    )
    await live_twin.inject(kind="install_failure", server="sepm-a2", count=1)
    bundle = pkcs12_bundle(await live_twin.issue_pem(server.hostnames))
    ops = host_operations_for(site, None)
    try:
        with pytest.raises(HostOperationError) as caught:
            await ops.restart_service(server, "semwebsrv", key="saga-5:restart")
        assert caught.value.retryable is True
        assert "semwebsrv service on sepm-a2 failed to start" in str(caught.value)
        # The webserver (Apache) is down: its TLS ports refuse, and the probe says which.
        with pytest.raises(TlsProbeError) as probe:
            await served_fingerprints(server)
        assert set(probe.value.failures) == {"443", "8445"}
        assert "refused the connection" in str(probe.value)
        # The same key tries again (the failure was not final) and this time it starts.
        await ops.restart_service(server, "semwebsrv", key="saga-5:restart")
        assert len(await served_fingerprints(server)) == 4

        with pytest.raises(
            HostOperationError, match="Failed to update the server certificate"
        ) as c:
            await ops.install_certificate(server, bundle, key="saga-5:install")
        assert c.value.retryable is True
        await ops.install_certificate(server, bundle, key="saga-5:install")
    finally:
        await ops.close()


async def test_semapisrv_does_not_exist_before_14(live_twin: LiveTwin) -> None:
    site = live_twin.site("site-b")
    server = site.server("sepm-b1")
    assert services_to_restart(site.version) == ["semsrv", "semwebsrv"]
    ops = host_operations_for(site, None)
    try:
        with pytest.raises(HostOperationError, match="semapisrv does not exist") as caught:
            await ops.restart_service(server, "semapisrv", key="saga-6:restart")
        assert caught.value.retryable is False
    finally:
        await ops.close()


async def test_an_unanswered_call_times_out_as_retryable(live_twin: LiveTwin) -> None:
    site = live_twin.site("site-a")
    await live_twin.inject(kind="timeout", path="/certificate/backup", delay_s=0.6, count=1)
    ops = host_operations_for(site, None, http_timeout=0.2)
    try:
        with pytest.raises(HostOperationError, match=r"did not answer within 0\.2 s") as caught:
            await ops.backup_certificate(site.server("sepm-a1"), key="saga-7:backup")
        assert caught.value.retryable is True
    finally:
        await ops.close()


async def test_the_probe_names_a_port_where_nothing_listens() -> None:
    server = ServerTarget(name="gone", address="127.0.0.1", version="14.3", ports={"443": 1})
    with pytest.raises(TlsProbeError, match=r"port 443: 127.0.0.1:1 refused the connection"):
        await served_fingerprints(server)


async def test_a_backup_is_deleted_from_the_host_once_and_a_second_delete_finds_it_gone(
    live_twin: LiveTwin,
) -> None:
    site = live_twin.site("site-a")
    server = site.server("sepm-a1")
    ops = host_operations_for(site, None)
    try:
        kept = await ops.backup_certificate(server, key="saga-9:backup:keep")
        doomed = await ops.backup_certificate(server, key="saga-9:backup:doomed")
        held = {b["backup_id"] for b in live_twin.server_view("sepm-a1")["backups"]}
        assert {kept.backup_ref, doomed.backup_ref} <= held

        assert await ops.delete_certificate_backup(server, doomed.backup_ref, key="d-1") is True
        # A retried command (same key) and a later one (a crash after the host deleted it)
        # both find the work done; neither touches another backup.
        assert await ops.delete_certificate_backup(server, doomed.backup_ref, key="d-1") is True
        assert await ops.delete_certificate_backup(server, doomed.backup_ref, key="d-2") is False
        with pytest.raises(HostOperationError) as refused:
            await ops.delete_certificate_backup(server, "../sepm-a2", key="d-3")
        assert refused.value.code == "NOT_A_CERTROTATE_BACKUP" and not refused.value.retryable
    finally:
        await ops.close()

    left = {b["backup_id"] for b in live_twin.server_view("sepm-a1")["backups"]}
    assert doomed.backup_ref not in left and kept.backup_ref in left
    deletes = [
        (e["idempotency_key"], e["replay"])
        for e in await live_twin.operations()
        if e["operation"] == "certificate.backup.delete"
    ]
    assert deletes == [("d-1", False), ("d-1", True), ("d-2", False)]
