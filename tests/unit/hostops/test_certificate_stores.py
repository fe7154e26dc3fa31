"""Issue 10 item 4: a certificate swap must change SEPM's record (what clients get in the
management server list) and both stores (Tomcat keystore.jks for 8443/8446, Apache
server.crt/server.key for 443/8445). The only supported way that changes the record is the
console's Manage Server Certificate > Update the server certificate (Broadcom KB 187099); no
unattended form is documented. So the WinRM driver hands the swap and its rollback to a
person, the manual tasks follow the console procedure with backup and rollback of both
stores and the record, and the scripts (for an administrator, or a site that opted in after
checking its SEPM version) handle all four files."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest

from certrotate_shared.hostops import (
    CertificateBundle,
    HostOperationError,
    ManualTaskNotVerified,
    ManualTaskPending,
    host_operations_for,
    task_id_for,
)
from certrotate_shared.hostops.manual import ManualHostOperations
from certrotate_shared.hostops.winrm import WinRMHostOperations
from certrotate_shared.hostops.winrm_script import scripts_directory
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

pytestmark = pytest.mark.unit

OLD, NEW = "11" * 32, "22" * 32
SERVER = ServerTarget(
    name="sepm-a1",
    address="10.0.0.1",
    hostnames=["sepm-a1.corp.test"],
    version="14.3.9000",
    ports={"8443": 8443, "8446": 8446, "443": 443, "8445": 8445, "8014": 8014},
)
SITE = SiteTarget(
    site="site-a",
    version="14.3.9000",
    api_url="https://sepm-a1:8446/sepm/api/v1",
    credential_ref="sepm/site-a",
    servers=[SERVER],
    host_ops=HostOpsTarget(driver="winrm", endpoint=None, credential_ref="winrm/site-a"),
)
BUNDLE = CertificateBundle("pkcs12", b"\x30\x82", "pw", ref="bundle-7", fingerprint=NEW)
SCRIPTS = scripts_directory()


class Vaulted:
    def __init__(self, **account: Any) -> None:
        self.account = {"username": "svc", "password": "winrm-pass", **account}

    async def get(self, ref: str) -> dict[str, Any]:
        return self.account


class NoWinRM:
    """A protocol factory that fails the test if anything is sent to the host."""

    def __init__(self, **options: Any) -> None:
        raise AssertionError("the swap must not reach the host over WinRM")


def winrm(**account: Any) -> WinRMHostOperations:
    return WinRMHostOperations(SITE, cast(Vault, Vaulted(**account)), protocol_factory=NoWinRM)


class Served:
    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint

    async def __call__(self, server: ServerTarget) -> dict[str, str]:
        return dict.fromkeys(server.tls_ports(), self.fingerprint)


async def test_the_winrm_driver_refuses_the_swap_and_points_to_the_manual_driver() -> None:
    ops = winrm()
    for call in (
        ops.install_certificate(SERVER, BUNDLE, key="k-install"),
        ops.restore_certificate(SERVER, "winrm:20240501T101500Z-1a2b3c4d:" + OLD, key="k-rb"),
    ):
        with pytest.raises(HostOperationError) as refused:
            await call
        assert refused.value.code == "CONSOLE_REQUIRED"
        assert not refused.value.retryable
        message = str(refused.value)
        assert "Manage Server Certificate" in message and "management server list" in message
        assert "manual" in message


async def test_a_winrm_site_gets_the_swap_as_a_console_task_and_the_rest_over_winrm() -> None:
    ops = host_operations_for(SITE, cast(Vault, Vaulted()))
    with pytest.raises(ManualTaskPending) as caught:
        await ops.install_certificate(SERVER, BUNDLE, key="k-install")
    task = caught.value.task
    assert task.task_id == task_id_for("k-install")
    assert "Update the server certificate" in task.instructions
    await ops.close()


def _steps(text: str, *phrases: str) -> list[int]:
    return [text.index(p) for p in phrases]


async def test_the_console_task_follows_the_vendor_procedure_and_names_both_stores() -> None:
    ops = ManualHostOperations(SITE, probe=Served(OLD))
    with pytest.raises(ManualTaskPending) as caught:
        await ops.install_certificate(SERVER, BUNDLE, key="k-install")
    text = caught.value.task.instructions
    order = _steps(
        text,
        "Admin > Servers",
        "Manage Server Certificate",
        "Update the server certificate",
        'Choose "PKCS#12 keystore',
        "Finish",
        "Stop-Service -Name semsrv",
        "Stop-Service -Name semwebsrv",
        "Stop-Service -Name semapisrv",
    )
    assert order == sorted(order)
    assert "management server list" in text
    assert "keystore.jks" in text and "server.crt" in text and "server.key" in text
    # Every TLS port, Apache's 8445 included, is checked; 8014 is plain HTTP.
    verification = caught.value.task.verification
    assert "8445 (port 8445)" in verification and "8014" not in verification


async def test_the_backup_task_keeps_both_stores_and_what_the_console_needs() -> None:
    ops = ManualHostOperations(SITE, probe=Served(OLD))
    with pytest.raises(ManualTaskPending) as caught:
        await ops.backup_certificate(SERVER, key="k-backup")
    text = caught.value.task.instructions
    for saved in (
        "tomcat\\etc\\keystore.jks",
        "tomcat\\conf\\server.xml",
        "apache\\conf\\ssl\\server.crt",
        "apache\\conf\\ssl\\server.key",
        "Server Private Key Backup",
    ):
        assert saved in text, saved


async def test_a_rollback_of_a_winrm_backup_goes_through_the_console_and_is_verified() -> None:
    ref = f"winrm:20240501T101500Z-1a2b3c4d:{OLD}"
    ops = ManualHostOperations(SITE, probe=Served(NEW))
    with pytest.raises(ManualTaskPending) as caught:
        await ops.restore_certificate(SERVER, ref, key="k-rb")
    task = caught.value.task
    assert "%ProgramData%\\certrotate\\backups\\20240501T101500Z-1a2b3c4d" in task.instructions
    assert "Update the server certificate" in task.instructions
    assert "JKS keystore" in task.instructions
    assert f"sha256 {OLD}" in task.verification
    confirmed = ManualHostOperations(SITE, confirmed_tasks={task.task_id}, probe=Served(NEW))
    with pytest.raises(ManualTaskNotVerified, match=f"should serve {OLD}"):
        await confirmed.restore_certificate(SERVER, ref, key="k-rb")


def _script(name: str) -> str:
    return (SCRIPTS / name).read_text("utf-8-sig")


def test_backup_and_restore_scripts_cover_both_stores() -> None:
    common = _script("CertrotateCommon.ps1")
    for path in (
        "tomcat\\etc\\keystore.jks",
        "tomcat\\conf\\server.xml",
        "apache\\conf\\ssl\\server.crt",
        "apache\\conf\\ssl\\server.key",
    ):
        assert path in common, path
    for name in ("Backup-SepmCertificate.ps1", "Restore-SepmCertificate.ps1"):
        assert "Get-SepmStoreFiles" in _script(name), name


def test_the_install_script_writes_the_apache_pair_from_the_same_keystore() -> None:
    install = _script("Install-SepmCertificate.ps1")
    renamed = re.search(r"foreach \(\$target in @\(([^)]*)\)\) \{\s*Move-Item", install)
    assert renamed, "the install renames no staged file over its target"
    targets = {"'Keystore'", "'ServerXml'", "'ApacheCertificate'", "'ApacheKey'"}
    assert set(renamed.group(1).replace(" ", "").split(",")) == targets
    assert "WriteAllText($next.ApacheCertificate" in install
    assert "WriteAllText($next.ApacheKey" in install
    # The Apache pair is checked against the keystore's certificate before anything moves.
    checked = install.index("APACHE_MISMATCH")
    moved = install.index("Move-Item -LiteralPath $next[$target] -Destination $paths.$target")
    assert checked < moved
    assert "'semsrv', 'semwebsrv', 'semapisrv'" in install
