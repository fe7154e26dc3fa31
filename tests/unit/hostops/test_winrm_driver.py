"""The WinRM driver: which script it runs with which parameters, and that secrets travel only
in the encrypted message body (standard input), never on a command line or in a log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from certrotate_shared.hostops import CertificateBundle, HostOperationError, host_operations_for
from certrotate_shared.hostops.winrm import WinRMHostOperations
from certrotate_shared.hostops.winrm_script import BOOTSTRAP, scripts_directory
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

pytestmark = pytest.mark.unit

WINRM_PASSWORD = "winrm-Acc0unt-pass"
KEYSTORE_PASSWORD = "Keyst0re-pass-xyz"
KEYSTORE = b"\xfe\xed\xfe\xed" + bytes(range(256)) * 4
SCRIPTS = scripts_directory()


class FakeVault:
    def __init__(self, entries: dict[str, dict[str, Any]]) -> None:
        self.entries = entries

    async def get(self, ref: str) -> dict[str, Any]:
        if ref not in self.entries:
            raise KeyError(ref)
        return self.entries[ref]


class FakeProtocol:
    """Stands in for pywinrm's Protocol; records what would cross the wire."""

    made: list[FakeProtocol] = []
    reply: Any = None  # callable(document) -> (stdout, stderr, status), or an exception

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.command: tuple[str, list[str]] | None = None
        self.chunks: list[tuple[bytes, bool]] = []
        self.closed = False
        FakeProtocol.made.append(self)

    def open_shell(self, codepage: int | None = None) -> str:
        return "shell-1"

    def run_command(self, shell: str, command: str, arguments: list[str]) -> str:
        self.command = (command, list(arguments))
        return "command-1"

    def send_command_input(self, shell: str, command: str, data: bytes, end: bool = False) -> None:
        self.chunks.append((data, end))

    def get_command_output(self, shell: str, command: str) -> tuple[bytes, bytes, int]:
        if isinstance(FakeProtocol.reply, Exception):
            raise FakeProtocol.reply
        return cast(tuple[bytes, bytes, int], FakeProtocol.reply(self.document()))

    def cleanup_command(self, shell: str, command: str) -> None:
        pass

    def close_shell(self, shell: str) -> None:
        self.closed = True

    def stdin(self) -> bytes:
        return b"".join(data for data, _ in self.chunks)

    def document(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(base64.b64decode(self.stdin().strip())))


def result(**fields: Any) -> Any:
    return lambda doc: (f"noise\r\nCERTROTATE-RESULT {json.dumps(fields)}\r\n".encode(), b"", 0)


def site(endpoint: str | None = "http://{server}.corp.test:5985/wsman") -> SiteTarget:
    return SiteTarget(
        site="site-a",
        version="14.3.9000",
        api_url="https://sepm-a1:8446/sepm/api/v1",
        credential_ref="sepm/site-a",
        servers=[
            ServerTarget(
                name="sepm-a1",
                address="10.0.0.1",
                version="14.3.9000",
                ports={"8443": 8443, "443": 443},
            ),
            ServerTarget(name="sepm-a2", address="10.0.0.2", version="14.3.9000"),
        ],
        host_ops=HostOpsTarget(driver="winrm", endpoint=endpoint, credential_ref="winrm/site-a"),
    )


def driver(target: SiteTarget | None = None, **account: Any) -> WinRMHostOperations:
    """A site whose administrator opted into the file-level swap, so that the install and
    restore scripts run here (the default hands them to the console: test_certificate_stores)."""
    entry = {
        "username": "svc-certrotate",
        "password": WINRM_PASSWORD,
        "domain": "CORP",
        "certificate_swap": "files",
        **account,
    }
    vault = cast(Vault, FakeVault({"winrm/site-a": entry}))
    return WinRMHostOperations(target or site(), vault, protocol_factory=FakeProtocol)


@pytest.fixture(autouse=True)
def fresh_protocols() -> None:
    FakeProtocol.made = []
    FakeProtocol.reply = result()


def command_line(protocol: FakeProtocol) -> str:
    assert protocol.command is not None
    command, arguments = protocol.command
    return " ".join([command, *arguments])


def decoded_command(protocol: FakeProtocol) -> str:
    assert protocol.command is not None
    arguments = protocol.command[1]
    encoded = arguments[arguments.index("-EncodedCommand") + 1]
    return base64.b64decode(encoded).decode("utf-16-le")


async def test_install_sends_the_keystore_and_password_only_on_standard_input(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    FakeProtocol.reply = result(fingerprint_sha256="ab" * 32, replayed=False)
    bundle = CertificateBundle(
        format="pkcs12", data=KEYSTORE, password=KEYSTORE_PASSWORD, fingerprint="AB" * 32
    )
    ops = driver()
    await ops.install_certificate(site().server("sepm-a1"), bundle, key="saga:install:sepm-a1")

    (protocol,) = FakeProtocol.made
    doc = protocol.document()
    assert doc["name"] == "Install-SepmCertificate.ps1"
    assert doc["script"] == (SCRIPTS / "Install-SepmCertificate.ps1").read_text("utf-8-sig")
    assert doc["common"] == (SCRIPTS / "CertrotateCommon.ps1").read_text("utf-8-sig")
    assert doc["params"] == {
        "IdempotencyKey": "saga:install:sepm-a1",
        "Format": "pkcs12",
        "ExpectedFingerprint": "AB" * 32,
    }
    assert doc["secrets"] == {"KeystorePassword": KEYSTORE_PASSWORD}
    assert base64.b64decode(doc["blobs"]["Keystore"]) == KEYSTORE

    # The command line is the fixed bootstrap, whatever the operation.
    line = command_line(protocol)
    assert line.startswith("powershell.exe -NoLogo -NoProfile -NonInteractive")
    assert decoded_command(protocol) == BOOTSTRAP
    secrets = [KEYSTORE_PASSWORD, WINRM_PASSWORD, base64.b64encode(KEYSTORE).decode()[:40]]
    for secret in secrets:
        assert secret not in line and secret not in decoded_command(protocol)
        assert secret not in caplog.text
    # Plain HTTP: the body carrying the password must be encrypted by the auth protocol.
    assert protocol.options["message_encryption"] == "always"
    assert protocol.options["endpoint"] == "http://sepm-a1.corp.test:5985/wsman"
    assert protocol.options["transport"] == "ntlm"
    assert protocol.options["username"] == "CORP\\svc-certrotate"
    assert protocol.closed


@pytest.mark.parametrize(
    ("call", "script", "params", "host"),
    [
        (
            lambda ops, s: ops.backup_certificate(s.servers[0], key="k1"),
            "Backup-SepmCertificate.ps1",
            {"IdempotencyKey": "k1", "ProbePort": 8443},
            "sepm-a1",
        ),
        (
            lambda ops, s: ops.restore_certificate(
                s.servers[1], f"winrm:20240501T101500Z-1a2b3c4d:{'ef' * 32}", key="k2"
            ),
            "Restore-SepmCertificate.ps1",
            {"IdempotencyKey": "k2", "BackupId": "20240501T101500Z-1a2b3c4d"},
            "sepm-a2",
        ),
        (
            lambda ops, s: ops.restart_service(s.servers[0], "semapisrv", key="k3"),
            "Restart-SepmService.ps1",
            {"IdempotencyKey": "k3", "Service": "semapisrv", "TimeoutSeconds": 300},
            "sepm-a1",
        ),
        (
            lambda ops, s: ops.delete_replication_partner(s, "site-b", key="k4"),
            "Remove-SepmReplicationPartner.ps1",
            {"IdempotencyKey": "k4", "PartnerSiteName": "site-b"},
            "sepm-a1",
        ),
        (
            lambda ops, s: ops.add_replication_partner(s, "site-b", key="k5"),
            "Add-SepmReplicationPartner.ps1",
            {"IdempotencyKey": "k5", "PartnerSiteName": "site-b"},
            "sepm-a1",
        ),
    ],
)
async def test_each_operation_runs_its_script_with_its_parameters(
    call: Any, script: str, params: dict[str, Any], host: str
) -> None:
    FakeProtocol.reply = result(backup_id="b-1", fingerprint_sha256="cd" * 32)
    target = site()
    await call(driver(target), target)
    (protocol,) = FakeProtocol.made
    doc = protocol.document()
    assert (doc["name"], doc["params"], doc["secrets"], doc["blobs"]) == (script, params, {}, {})
    assert protocol.options["endpoint"] == f"http://{host}.corp.test:5985/wsman"
    assert decoded_command(protocol) == BOOTSTRAP


def script_parameters(name: str) -> tuple[set[str], set[str]]:
    """(all, mandatory) parameter names of a script's param() block."""
    text = (SCRIPTS / name).read_text("utf-8-sig")
    block = text[text.index("param(") : text.index("\n)\n")]
    names = set(re.findall(r"\]\s*\$(\w+)", block))
    mandatory = set(re.findall(r"\(Mandatory\)\][^$\n]*\$(\w+)", block))
    return names, mandatory


@pytest.mark.parametrize(
    ("script", "sent"),
    [
        ("Backup-SepmCertificate.ps1", {"IdempotencyKey", "ProbePort", "SepmHome"}),
        (
            "Install-SepmCertificate.ps1",
            {
                "IdempotencyKey",
                "Format",
                "ExpectedFingerprint",
                "SepmHome",
                "KeystorePassword",
                "Keystore",
            },
        ),
        ("Restore-SepmCertificate.ps1", {"IdempotencyKey", "BackupId", "SepmHome"}),
        ("Restart-SepmService.ps1", {"IdempotencyKey", "Service", "TimeoutSeconds"}),
        ("Remove-SepmReplicationPartner.ps1", {"IdempotencyKey", "PartnerSiteName", "SepmHome"}),
        ("Add-SepmReplicationPartner.ps1", {"IdempotencyKey", "PartnerSiteName", "SepmHome"}),
    ],
)
def test_every_parameter_sent_is_declared_by_the_script(script: str, sent: set[str]) -> None:
    declared, mandatory = script_parameters(script)
    assert sent <= declared, f"{script} does not declare {sent - declared}"
    assert mandatory <= sent, f"{script} needs {mandatory - sent}"
    text = (SCRIPTS / script).read_text("utf-8-sig")
    assert "CHECK ON A REAL SERVER" in text or "MUST BE CHECKED AGAINST A REAL SERVER" in text


def test_scripts_take_the_password_as_a_securestring_and_never_print_it() -> None:
    install = (SCRIPTS / "Install-SepmCertificate.ps1").read_text("utf-8-sig")
    assert "[System.Security.SecureString]$KeystorePassword" in install
    assert "[byte[]]$Keystore" in install
    for name in SCRIPTS.glob("*.ps1"):
        text = name.read_text("utf-8-sig")
        # keytool gets the password from its environment, never as -storepass <value>.
        assert not re.search(r"-(store|key|srcstore|deststore)pass'\s*,\s*\$", text)
        assert "Write-Host $plain" not in text and "Write-Output $plain" not in text


async def test_a_pem_bundle_becomes_a_pkcs12_that_opens_with_its_password() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sepm-a1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    bundle = CertificateBundle(
        format="pem",
        data=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
        ),
        password=KEYSTORE_PASSWORD,
    )
    await driver().install_certificate(site().servers[0], bundle, key="k")
    doc = FakeProtocol.made[0].document()
    assert doc["params"]["Format"] == "pkcs12"
    loaded_key, loaded_cert, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(doc["blobs"]["Keystore"]), KEYSTORE_PASSWORD.encode()
    )
    assert loaded_cert == cert
    assert loaded_key is not None


async def test_a_large_keystore_is_sent_in_chunks_ending_once() -> None:
    big = CertificateBundle(format="jks", data=bytes(300_000), password=KEYSTORE_PASSWORD)
    await driver().install_certificate(site().servers[0], big, key="k")
    protocol = FakeProtocol.made[0]
    assert len(protocol.chunks) > 1
    assert [end for _, end in protocol.chunks] == [False] * (len(protocol.chunks) - 1) + [True]
    assert base64.b64decode(protocol.document()["blobs"]["Keystore"]) == bytes(300_000)


async def test_a_script_failure_carries_its_reason_and_retryability(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    failure = {
        "code": "WRONG_PASSWORD",
        "message": "Keystore was tampered with, or password was incorrect",
        "retryable": False,
    }
    FakeProtocol.reply = lambda doc: (
        f"CERTROTATE-ERROR {json.dumps(failure)}\r\n".encode(),
        b"",
        1,
    )
    bundle = CertificateBundle(format="jks", data=KEYSTORE, password=KEYSTORE_PASSWORD)
    with pytest.raises(HostOperationError) as caught:
        await driver().install_certificate(site().servers[0], bundle, key="k")
    error = caught.value
    assert str(error) == (
        "could not run Install-SepmCertificate.ps1 on sepm-a1: "
        "Keystore was tampered with, or password was incorrect"
    )
    assert (error.code, error.retryable) == ("WRONG_PASSWORD", False)
    assert KEYSTORE_PASSWORD not in caplog.text

    FakeProtocol.reply = lambda doc: (
        b'CERTROTATE-ERROR {"code": "SERVICE_START_FAILED", "message": "The semwebsrv service '
        b'on SEPM1 is Stopped, not Running, after 300 s.", "retryable": true}\r\n',
        b"",
        1,
    )
    with pytest.raises(HostOperationError, match="is Stopped, not Running") as caught:
        await driver().restart_service(site().servers[0], "semwebsrv", key="k")
    assert caught.value.retryable is True


async def test_powershell_dying_without_a_result_is_reported_with_its_stderr() -> None:
    FakeProtocol.reply = lambda doc: (b"", b"powershell.exe : The term 'x' is not recognized", 1)
    with pytest.raises(HostOperationError, match=r"exited with 1 without a result.*not recognized"):
        await driver().restart_service(site().servers[0], "semsrv", key="k")


async def test_transport_failures_say_whether_to_retry() -> None:
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from winrm.exceptions import InvalidCredentialsError

    FakeProtocol.reply = RequestsConnectionError("connection refused")
    with pytest.raises(HostOperationError, match="WinRM to http://sepm-a1") as caught:
        await driver().restart_service(site().servers[0], "semsrv", key="k")
    assert (caught.value.code, caught.value.retryable) == ("UNREACHABLE", True)

    FakeProtocol.reply = InvalidCredentialsError("401")
    with pytest.raises(HostOperationError, match="refused the WinRM account") as caught:
        await driver().restart_service(site().servers[0], "semsrv", key="k")
    assert (caught.value.code, caught.value.retryable) == ("ACCESS_DENIED", False)
    assert WINRM_PASSWORD not in str(caught.value)


async def test_endpoints_default_to_https_on_each_servers_address() -> None:
    await driver(site(endpoint=None)).restart_service(site().servers[1], "semsrv", key="k")
    options = FakeProtocol.made[0].options
    assert options["endpoint"] == "https://10.0.0.2:5986/wsman"
    assert options["message_encryption"] == "auto"
    assert options["server_cert_validation"] == "validate"


async def test_the_sepm_install_directory_from_the_vault_reaches_the_scripts() -> None:
    FakeProtocol.reply = result(backup_id="20240501T101500Z-1a2b3c4d", fingerprint_sha256="ef" * 32)
    ops = driver(sepm_home="D:\\SEPM")
    backup = await ops.backup_certificate(site().servers[0], key="k1")
    # The fingerprint rides in the ref, so a rollback through the console can be verified.
    assert (backup.backup_ref, backup.fingerprint) == (
        f"winrm:20240501T101500Z-1a2b3c4d:{'ef' * 32}",
        "ef" * 32,
    )
    await ops.restart_service(site().servers[0], "semsrv", key="k2")
    backup, restart = (p.document()["params"] for p in FakeProtocol.made)
    assert backup["SepmHome"] == "D:\\SEPM"
    assert "SepmHome" not in restart


async def test_misconfigured_accounts_are_refused_before_connecting() -> None:
    with pytest.raises(HostOperationError, match="WinRM transport 'basic' is not allowed"):
        await driver(transport="basic").restart_service(site().servers[0], "semsrv", key="k")
    no_ref = site().model_copy(
        update={"host_ops": HostOpsTarget(driver="winrm", endpoint=None, credential_ref=None)}
    )
    with pytest.raises(HostOperationError, match=r"no host_ops\.credential_ref"):
        await driver(no_ref).restart_service(site().servers[0], "semsrv", key="k")
    missing = WinRMHostOperations(site(), cast(Vault, FakeVault({})), protocol_factory=FakeProtocol)
    with pytest.raises(HostOperationError, match="no WinRM account is stored"):
        await missing.restart_service(site().servers[0], "semsrv", key="k")
    assert FakeProtocol.made == []


def test_the_factory_chooses_winrm_from_the_inventory() -> None:
    assert isinstance(host_operations_for(site(), None), WinRMHostOperations)


def test_scripts_are_found_in_the_checkout() -> None:
    assert (scripts_directory() / "CertrotateCommon.ps1").is_file()
    assert Path(__file__).resolve().parents[3] / "deploy" / "winrm" == scripts_directory()
