"""The WinRM driver: the PowerShell scripts under deploy/winrm/, run on each management server.

The certificate swap and its rollback are not done over WinRM by default: SEPM records the
certificate in its database and hands it to clients in the management server list, and only
the console's Manage Server Certificate > Update the server certificate changes that record
with both stores (Broadcom KB 187099; no unattended form is documented). Those two steps go to
the `console` driver (the manual driver, set by host_operations_for) or are refused
(CONSOLE_REQUIRED). Backups (both stores), restarts and replication partners run here. A site
whose administrator checked that the record follows the files on their SEPM version may opt
in with "certificate_swap": "files" in the vault entry.

How a script runs, and why secrets stay out of command lines and transcripts:
- The command line is always the same fixed bootstrap (`powershell.exe -EncodedCommand ...`,
  see BOOTSTRAP) and never carries a parameter.
- The script text, its plain parameters, the secrets (keystore password) and the blobs
  (keystore bytes) travel as one document on the command's standard input, which WinRM sends
  in the message body: encrypted by NTLM/Kerberos/CredSSP message encryption over HTTP
  (forced to "always") or by TLS over HTTPS.
- The bootstrap turns each secret into a SecureString and each blob into a byte[] with .NET
  calls (not cmdlets, whose parameter bindings module logging could record), then runs the
  script with them as parameters. Script-block logging sees only the script text.

Where each server is reached: `site.host_ops.endpoint` may name one host, or be a template
with `{server}` / `{address}` (e.g. `https://{server}.corp.example:5986/wsman`); without an
endpoint it is `https://{address}:5986/wsman`. Site-wide operations (replication partners)
run on the site's first server. The account is the vault entry at `host_ops.credential_ref`:
{"username", "password", "domain"?, "transport"? (ntlm | kerberos | credssp, default ntlm),
"server_cert_validation"? (validate | ignore, default validate), "ca_trust_path"?,
"sepm_home"? (when SEPM is not installed where the scripts look)}.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from certrotate_shared.hostops.arguments import checked_partner
from certrotate_shared.hostops.backup_refs import read_backup_ref
from certrotate_shared.hostops.base import CertificateBackup, CertificateBundle, HostOperationError
from certrotate_shared.hostops.manual import ManualHostOperations
from certrotate_shared.hostops.winrm_outcome import (
    keystore_for_install,
    read_outcome,
    transport_error,
)
from certrotate_shared.hostops.winrm_script import (
    BOOTSTRAP,
    POWERSHELL_ARGS,
    ScriptCall,
    scripts_directory,
)
from certrotate_shared.messages.common import ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

__all__ = ["BOOTSTRAP", "WinRMHostOperations", "keystore_for_install", "scripts_directory"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://{address}:5986/wsman"
WINRM_BACKUP_PREFIX = "winrm:"
CONSOLE_REQUIRED = (
    "SEPM keeps the server certificate in its database and hands it to clients in the "
    "management server list; replacing keystore.jks and the Apache server.crt/server.key "
    "over WinRM leaves that record stale (clients would receive the old certificate with "
    "their policy). The supported way to change the record and both stores is the console's "
    "Admin > Servers > Manage Server Certificate > Update the server certificate (Broadcom KB "
    "187099), and no unattended form of it is documented. Give this step to the manual "
    "host-operations driver (host_operations_for does so for WinRM sites), or set "
    '"certificate_swap": "files" in the WinRM vault entry only after checking on your SEPM '
    "version that the record follows the files."
)
STDIN_CHUNK = 48 * 1024  # well under WinRM's default MaxEnvelopeSizekb (500)
TRANSPORTS = ("ntlm", "kerberos", "credssp")
SERVICE_TIMEOUT_S = 300  # semsrv can take minutes to stop on a busy server


ProtocolFactory = Callable[..., Any]


def _pywinrm_protocol(**kwargs: Any) -> Any:
    from winrm.protocol import Protocol

    return Protocol(**kwargs)


class WinRMHostOperations:
    """HostOperations over WinRM, one PowerShell script per operation."""

    def __init__(
        self,
        site: SiteTarget,
        vault: Vault | None,
        *,
        timeout: float = 30.0,
        scripts: Path | None = None,
        protocol_factory: ProtocolFactory = _pywinrm_protocol,
        console: ManualHostOperations | None = None,
    ) -> None:
        self._site = site
        self._vault = vault
        self._timeout = timeout
        self._scripts = scripts or scripts_directory()
        self._protocol_factory = protocol_factory
        self._account: dict[str, Any] | None = None
        # Who does the certificate swap and its rollback (a person, at SEPM's console).
        self._console = console

    # -- HostOperations --------------------------------------------------------------------
    async def backup_certificate(self, server: ServerTarget, *, key: str) -> CertificateBackup:
        result = await self._run(
            server,
            "Backup-SepmCertificate.ps1",
            {"IdempotencyKey": key, "ProbePort": _port(server, "8443")},
        )
        missing = {"backup_id", "fingerprint_sha256"} - set(result)
        if missing:
            raise HostOperationError(
                f"Backup-SepmCertificate.ps1 on {server.name} reported no {', '.join(sorted(missing))}",
                code="NO_RESULT",
            )
        fingerprint = str(result["fingerprint_sha256"]).lower()
        # The fingerprint travels in the ref: a rollback done through the console (manual
        # driver) is verified against it.
        return CertificateBackup(
            backup_ref=f"{WINRM_BACKUP_PREFIX}{result['backup_id']}:{fingerprint}",
            fingerprint=fingerprint,
        )

    async def install_certificate(
        self, server: ServerTarget, bundle: CertificateBundle, *, key: str
    ) -> None:
        if not await self._swaps_files():
            await self._console_step().install_certificate(server, bundle, key=key)
            return
        data, fmt, password = keystore_for_install(bundle)
        params: dict[str, str | int | bool] = {"IdempotencyKey": key, "Format": fmt}
        if bundle.fingerprint:
            params["ExpectedFingerprint"] = bundle.fingerprint
        await self._run(
            server,
            "Install-SepmCertificate.ps1",
            params,
            secrets={"KeystorePassword": password},
            blobs={"Keystore": data},
        )

    async def restore_certificate(self, server: ServerTarget, backup_ref: str, *, key: str) -> None:
        if not await self._swaps_files():
            await self._console_step().restore_certificate(server, backup_ref, key=key)
            return
        await self._run(
            server,
            "Restore-SepmCertificate.ps1",
            {"IdempotencyKey": key, "BackupId": backup_id_of(backup_ref)},
        )

    async def delete_certificate_backup(
        self, server: ServerTarget, backup_ref: str, *, key: str
    ) -> bool:
        """Only a folder Backup-SepmCertificate.ps1 made: the id is checked here and again by
        the script, which also refuses links and anything its manifest does not list."""
        backup = read_backup_ref(backup_ref, sources=("winrm",))
        result = await self._run(
            server,
            "Remove-SepmCertificateBackup.ps1",
            {"IdempotencyKey": key, "BackupId": backup.backup_id},
            sepm_home=False,
        )
        return bool(result.get("deleted"))

    async def restart_service(self, server: ServerTarget, service: str, *, key: str) -> None:
        if self._console is not None and self._console.restarted_by_operator(server):
            return  # the console task had the person restart them already
        await self._run(
            server,
            "Restart-SepmService.ps1",
            {"IdempotencyKey": key, "Service": service, "TimeoutSeconds": SERVICE_TIMEOUT_S},
            sepm_home=False,
        )

    async def delete_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        partner = checked_partner(partner)
        if on_partner_side:
            await self._partner_console(partner).delete_replication_partner(
                site, partner, key=key, on_partner_side=True
            )
            return
        await self._run(
            site.servers[0],
            "Remove-SepmReplicationPartner.ps1",
            {"IdempotencyKey": key, "PartnerSiteName": partner},
        )

    async def add_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        partner = checked_partner(partner)
        if on_partner_side:
            await self._partner_console(partner).add_replication_partner(
                site, partner, key=key, on_partner_side=True
            )
            return
        await self._run(
            site.servers[0],
            "Add-SepmReplicationPartner.ps1",
            {"IdempotencyKey": key, "PartnerSiteName": partner},
        )

    def _partner_console(self, partner: str) -> ManualHostOperations:
        """The partner's side: its servers and account are not this site's WinRM entry."""
        if self._console is None:
            raise HostOperationError(
                f"site {partner!r}'s side of the partnership with {self._site.site!r} must be "
                f"changed on {partner!r}'s servers, which this site's WinRM account does not "
                "reach; give that step to a person (the manual driver)",
                code="PARTNER_SIDE_UNREACHABLE",
            )
        return self._console

    async def close(self) -> None:
        self._account = None
        if self._console is not None:
            await self._console.close()

    # -- the certificate swap ----------------------------------------------------------------
    async def _swaps_files(self) -> bool:
        """Only where an administrator opted in (vault entry "certificate_swap": "files")
        after checking, on their SEPM version, that SEPM's record follows the files."""
        account = await self._load_account()
        return account.get("certificate_swap") == "files"

    def _console_step(self) -> ManualHostOperations:
        if self._console is None:
            raise HostOperationError(CONSOLE_REQUIRED, code="CONSOLE_REQUIRED")
        return self._console

    # -- running a script ------------------------------------------------------------------
    def endpoint_for(self, server: ServerTarget) -> str:
        """The WinRM URL of one management server."""
        template = self._site.host_ops.endpoint or DEFAULT_ENDPOINT
        return template.format(server=server.name, address=server.address)

    async def _run(
        self,
        server: ServerTarget,
        script: str,
        params: dict[str, str | int | bool],
        *,
        secrets: dict[str, str] | None = None,
        blobs: dict[str, bytes] | None = None,
        sepm_home: bool = True,
    ) -> dict[str, Any]:
        account = await self._load_account()
        if sepm_home and account.get("sepm_home"):
            params = {**params, "SepmHome": str(account["sepm_home"])}
        call = ScriptCall(script, params, secrets or {}, blobs or {})
        endpoint = self.endpoint_for(server)
        document = call.document(self._scripts)
        log.info(
            "winrm %s on %s (%s): params %s, secrets %s, blobs %s",
            call.script,
            server.name,
            endpoint,
            sorted(call.params),
            sorted(call.secrets),
            sorted(call.blobs),
        )
        what = f"run {call.script} on {server.name}"
        try:
            stdout, stderr, status = await asyncio.to_thread(
                self._execute, endpoint, account, document
            )
        except HostOperationError:
            raise
        except Exception as exc:
            raise transport_error(what, endpoint, exc) from exc
        return read_outcome(what, stdout, stderr, status)

    async def _load_account(self) -> dict[str, Any]:
        if self._account is not None:
            return self._account
        ref = self._site.host_ops.credential_ref
        if self._vault is None or not ref:
            raise HostOperationError(
                f"site {self._site.site!r} uses WinRM but has no host_ops.credential_ref "
                "(or no vault was given)",
                code="MISCONFIGURED",
            )
        try:
            account = await self._vault.get(ref)
        except KeyError as exc:
            raise HostOperationError(
                f"no WinRM account is stored in the vault under {ref!r}", code="MISCONFIGURED"
            ) from exc
        if not account.get("username") or not account.get("password"):
            raise HostOperationError(
                f"the vault entry {ref!r} needs a username and a password", code="MISCONFIGURED"
            )
        if account.get("transport", "ntlm") not in TRANSPORTS:
            raise HostOperationError(
                f"WinRM transport {account.get('transport')!r} is not allowed: use one of "
                f"{', '.join(TRANSPORTS)} (they encrypt the message body)",
                code="MISCONFIGURED",
            )
        self._account = account
        return account

    def _execute(
        self, endpoint: str, account: Mapping[str, Any], document: bytes
    ) -> tuple[bytes, bytes, int]:
        username = str(account["username"])
        domain = account.get("domain")
        if domain and "\\" not in username and "@" not in username:
            username = f"{domain}\\{username}"
        protocol = self._protocol_factory(
            endpoint=endpoint,
            transport=account.get("transport", "ntlm"),
            username=username,
            password=account["password"],
            server_cert_validation=account.get("server_cert_validation", "validate"),
            ca_trust_path=account.get("ca_trust_path", "legacy_requests"),
            # Over plain HTTP the body must be encrypted: it carries the keystore password.
            message_encryption="always" if endpoint.startswith("http:") else "auto",
            read_timeout_sec=int(self._timeout) + 10,
            operation_timeout_sec=int(self._timeout),
        )
        shell = protocol.open_shell(codepage=65001)
        try:
            command = protocol.run_command(shell, "powershell.exe", POWERSHELL_ARGS)
            try:
                for start in range(0, len(document), STDIN_CHUNK):
                    chunk = document[start : start + STDIN_CHUNK]
                    last = start + STDIN_CHUNK >= len(document)
                    protocol.send_command_input(shell, command, chunk, end=last)
                stdout, stderr, status = protocol.get_command_output(shell, command)
            finally:
                protocol.cleanup_command(shell, command)
        finally:
            protocol.close_shell(shell)
        return bytes(stdout), bytes(stderr), int(status)


def backup_id_of(backup_ref: str) -> str:
    """The script's backup id from "winrm:<id>:<fingerprint>" (or a bare id)."""
    if backup_ref.startswith(WINRM_BACKUP_PREFIX):
        return backup_ref[len(WINRM_BACKUP_PREFIX) :].split(":", 1)[0]
    return backup_ref


def _port(server: ServerTarget, name: str) -> int:
    return int(server.ports.get(name, int(name)))
