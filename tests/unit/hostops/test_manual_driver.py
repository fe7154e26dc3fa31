"""The manual driver: precise operator tasks without secrets, then confirmation and observation."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certrotate_shared.hostops import (
    CertificateBundle,
    ManualTaskNotVerified,
    ManualTaskPending,
    OperatorTask,
    host_operations_for,
    task_id_for,
)
from certrotate_shared.hostops.manual import ManualHostOperations, bundle_fingerprint
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.tlsprobe import TlsProbeError

pytestmark = pytest.mark.unit

PASSWORD = "Pfx-pass-never-shown"
OLD = "11" * 32
SERVER = ServerTarget(
    name="sepm-a1",
    address="10.0.0.1",
    hostnames=["sepm-a1.corp.test"],
    version="14.3.9000",
    ports={"8443": 8443, "8446": 8446, "443": 443, "8014": 8014},
)
OLD_SERVER = SERVER.model_copy(update={"name": "sepm-old", "version": "12.1.6000"})
SITE = SiteTarget(
    site="site-a",
    version="14.3.9000",
    api_url="https://sepm-a1:8446/sepm/api/v1",
    credential_ref="sepm/site-a",
    servers=[SERVER],
    host_ops=HostOpsTarget(driver="manual"),
)


def make_bundle() -> tuple[CertificateBundle, str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sepm-a1.corp.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(
        b"sepm", key, cert, None, serialization.BestAvailableEncryption(PASSWORD.encode())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    return CertificateBundle("pkcs12", data, PASSWORD, ref="bundle-42"), fingerprint, key_pem


class Served:
    """What the TLS ports present, as the probe would observe it."""

    def __init__(self, fingerprint: str | None) -> None:
        self.fingerprint = fingerprint
        self.calls = 0

    async def __call__(self, server: ServerTarget) -> dict[str, str]:
        self.calls += 1
        if self.fingerprint is None:
            raise TlsProbeError("10.0.0.1:443 refused the connection (is the service running?)")
        return dict.fromkeys(server.tls_ports(), self.fingerprint)


def pending(error: pytest.ExceptionInfo[ManualTaskPending]) -> OperatorTask:
    return error.value.task


def assert_no_secrets(task: OperatorTask, *secrets: str | bytes) -> None:
    text = f"{task.title}\n{task.instructions}\n{task.verification}"
    for secret in secrets:
        probe = secret.decode(errors="ignore") if isinstance(secret, bytes) else secret
        assert probe[:40] not in text


async def test_install_asks_for_the_bundle_by_reference_and_never_shows_secrets() -> None:
    bundle, fingerprint, key_pem = make_bundle()
    ops = ManualHostOperations(SITE, probe=Served(OLD))
    with pytest.raises(ManualTaskPending) as caught:
        await ops.install_certificate(SERVER, bundle, key="saga-1:install:sepm-a1")
    task = pending(caught)
    assert task.task_id == task_id_for("saga-1:install:sepm-a1")
    assert task.server == "sepm-a1"
    assert "the certificate bundle bundle-42 held by certrotate" in task.instructions
    assert "PKCS#12 keystore" in task.instructions
    assert "Manage Server Certificate" in task.instructions
    # The services, in SEPM's order, as commands to paste.
    order = [
        task.instructions.index(f"Stop-Service -Name {s} -Force")
        for s in ("semsrv", "semwebsrv", "semapisrv")
    ]
    assert order == sorted(order)
    assert f"sha256 {fingerprint}" in task.verification
    for port in ("8443", "8446", "443"):
        assert f"{port} (port {port})" in task.verification
    assert "8014" not in task.verification
    assert_no_secrets(task, PASSWORD, key_pem, bundle.data)


async def test_the_same_key_gives_the_same_task() -> None:
    bundle, _, _ = make_bundle()
    ops = ManualHostOperations(SITE, probe=Served(OLD))
    tasks = []
    for _ in range(2):
        with pytest.raises(ManualTaskPending) as caught:
            await ops.install_certificate(SERVER, bundle, key="saga-1:install")
        tasks.append(pending(caught))
    assert tasks[0] == tasks[1]
    with pytest.raises(ManualTaskPending) as caught:
        await ops.install_certificate(SERVER, bundle, key="saga-1:install:attempt-2")
    assert pending(caught).task_id != tasks[0].task_id


async def test_a_confirmed_install_is_verified_and_covers_the_restarts() -> None:
    bundle, fingerprint, _ = make_bundle()
    served = Served(fingerprint)
    assert isinstance(host_operations_for(SITE, None), ManualHostOperations)
    ops = ManualHostOperations(SITE, confirmed_tasks={task_id_for("k-install")}, probe=served)
    await ops.install_certificate(SERVER, bundle, key="k-install")
    for service in ("semsrv", "semwebsrv", "semapisrv"):
        await ops.restart_service(SERVER, service, key=f"k-restart-{service}")
    assert served.calls == 1


async def test_a_confirmed_install_that_is_not_served_stays_open() -> None:
    bundle, fingerprint, _ = make_bundle()
    ops = ManualHostOperations(SITE, confirmed_tasks={task_id_for("k")}, probe=Served(OLD))
    with pytest.raises(ManualTaskNotVerified) as caught:
        await ops.install_certificate(SERVER, bundle, key="k")
    assert caught.value.task.task_id == task_id_for("k")
    assert f"should serve {fingerprint}" in caught.value.reason
    assert f"port 443 serves {OLD}" in caught.value.reason
    assert caught.value.retryable is False
    # Not covered: a restart still needs its own task.
    with pytest.raises(ManualTaskPending, match="Restart semsrv on sepm-a1"):
        await ops.restart_service(SERVER, "semsrv", key="k-restart")

    down = ManualHostOperations(SITE, confirmed_tasks={task_id_for("k")}, probe=Served(None))
    with pytest.raises(ManualTaskNotVerified, match="refused the connection"):
        await down.install_certificate(SERVER, bundle, key="k")


async def test_backup_observes_the_served_certificate_after_confirmation() -> None:
    ops = ManualHostOperations(SITE, probe=Served(OLD))
    with pytest.raises(ManualTaskPending) as caught:
        await ops.backup_certificate(SERVER, key="k-backup")
    task = pending(caught)
    assert "Server Private Key Backup" in task.instructions
    assert f"It now serves sha256 {OLD}" in task.instructions

    confirmed = ManualHostOperations(SITE, confirmed_tasks={task.task_id}, probe=Served(OLD))
    backup = await confirmed.backup_certificate(SERVER, key="k-backup")
    assert backup.fingerprint == OLD
    assert backup.backup_ref == f"manual:{task.task_id}:{OLD}"

    # The rollback task names that backup and is verified against its fingerprint.
    with pytest.raises(ManualTaskPending) as caught:
        await confirmed.restore_certificate(SERVER, backup.backup_ref, key="k-restore")
    assert task.task_id in pending(caught).instructions
    assert f"sha256 {OLD}" in pending(caught).verification
    rollback = ManualHostOperations(
        SITE, confirmed_tasks={task_id_for("k-restore")}, probe=Served("22" * 32)
    )
    with pytest.raises(ManualTaskNotVerified, match=f"should serve {OLD}"):
        await rollback.restore_certificate(SERVER, backup.backup_ref, key="k-restore")


async def test_backup_refuses_a_server_whose_ports_serve_different_certificates() -> None:
    # Which of two certificates was "backed up" would be a guess; a rollback must not guess.
    async def mixed(server: ServerTarget) -> dict[str, str]:
        return {**dict.fromkeys(server.tls_ports(), OLD), "8446": "22" * 32}

    task_id = task_id_for("k-backup")
    ops = ManualHostOperations(SITE, confirmed_tasks={task_id}, probe=mixed)
    with pytest.raises(ManualTaskNotVerified, match="serve different certificates"):
        await ops.backup_certificate(SERVER, key="k-backup")


async def test_sepm_12_is_not_asked_to_restart_semapisrv() -> None:
    bundle, _, _ = make_bundle()
    with pytest.raises(ManualTaskPending) as caught:
        await ManualHostOperations(SITE, probe=Served(OLD)).install_certificate(
            OLD_SERVER, bundle, key="k"
        )
    assert "semapisrv" not in pending(caught).instructions
    assert "Stop-Service -Name semwebsrv" in pending(caught).instructions


async def test_replication_partner_tasks_say_what_will_be_checked() -> None:
    ops = ManualHostOperations(SITE)
    with pytest.raises(ManualTaskPending) as caught:
        await ops.delete_replication_partner(SITE, "site-b", key="k-break")
    task = pending(caught)
    assert "Delete Replication Partner" in task.instructions
    assert "/replication/status" in task.verification and "site-b" in task.verification
    with pytest.raises(ManualTaskPending) as caught:
        await ops.add_replication_partner(SITE, "site-b", key="k-restore")
    task = pending(caught)
    assert "Add Existing Replication Partner" in task.instructions
    assert "overwrites site site-b's database" in task.instructions
    assert "SUCCEEDED" in task.verification

    done = ManualHostOperations(
        SITE, confirmed_tasks={task_id_for("k-break"), task_id_for("k-restore")}
    )
    await done.delete_replication_partner(SITE, "site-b", key="k-break")
    await done.add_replication_partner(SITE, "site-b", key="k-restore")


def test_bundle_fingerprints_are_read_from_pkcs12_and_pem() -> None:
    bundle, fingerprint, _ = make_bundle()
    assert bundle_fingerprint(bundle) == fingerprint
    wrong = CertificateBundle("pkcs12", bundle.data, "wrong")
    assert bundle_fingerprint(wrong) is None
    assert bundle_fingerprint(CertificateBundle("jks", b"\xfe\xed", "x")) is None
