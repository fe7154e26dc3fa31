"""The WinRM driver: the PowerShell scripts under deploy/winrm/, run on each management server.

The certificate swap and its rollback are not done over WinRM by default: SEPM records the
certificate in its database and hands it to clients in the management server list, and only
the console's Manage Server Certificate > Update the server certificate changes that record
with both stores (Broadcom KB 187099; no unattended form is documented). Those two steps go to
the `console` driver (the manual driver, set by host_operations_for) or are refused
(CONSOLE_REQUIRED). Backups (both stores), restarts and replication partners run here. A site
whose administrator checked that the record follows the files on their SEPM version may opt
in with "certificate_swap": "files" in the vault entry.

Each operation is one script of deploy/winrm run through the site's WinRMSession
(winrm_session.py: the account, the endpoints, and why secrets stay out of command lines and
transcripts). Site-wide operations (replication partners) run on the site's first server.
"""

from __future__ import annotations

from pathlib import Path

from certrotate_shared.hostops.arguments import checked_partner
from certrotate_shared.hostops.backup_refs import read_backup_ref
from certrotate_shared.hostops.base import CertificateBackup, CertificateBundle, HostOperationError
from certrotate_shared.hostops.manual import ManualHostOperations
from certrotate_shared.hostops.winrm_outcome import keystore_for_install
from certrotate_shared.hostops.winrm_script import scripts_directory
from certrotate_shared.hostops.winrm_session import (
    ProtocolFactory,
    WinRMSession,
    pywinrm_protocol,
)
from certrotate_shared.messages.common import ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

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
SERVICE_TIMEOUT_S = 300  # semsrv can take minutes to stop on a busy server


class WinRMHostOperations:
    """HostOperations over WinRM, one PowerShell script per operation."""

    def __init__(
        self,
        site: SiteTarget,
        vault: Vault | None,
        *,
        timeout: float = 30.0,
        scripts: Path | None = None,
        protocol_factory: ProtocolFactory = pywinrm_protocol,
        console: ManualHostOperations | None = None,
    ) -> None:
        self._site = site
        self._session = WinRMSession(
            site,
            vault,
            timeout=timeout,
            scripts=scripts or scripts_directory(),
            protocol_factory=protocol_factory,
        )
        # Who does the certificate swap and its rollback (a person, at SEPM's console).
        self._console = console

    # -- HostOperations --------------------------------------------------------------------
    async def backup_certificate(self, server: ServerTarget, *, key: str) -> CertificateBackup:
        result = await self._session.run(
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
        await self._session.run(
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
        await self._session.run(
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
        result = await self._session.run(
            server,
            "Remove-SepmCertificateBackup.ps1",
            {"IdempotencyKey": key, "BackupId": backup.backup_id},
            sepm_home=False,
        )
        return bool(result.get("deleted"))

    async def restart_service(self, server: ServerTarget, service: str, *, key: str) -> None:
        if self._console is not None and self._console.restarted_by_operator(server):
            return  # the console task had the person restart them already
        await self._session.run(
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
        await self._session.run(
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
        await self._session.run(
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
        self._session.forget_account()
        if self._console is not None:
            await self._console.close()

    # -- the certificate swap ----------------------------------------------------------------
    async def _swaps_files(self) -> bool:
        """Only where an administrator opted in (vault entry "certificate_swap": "files")
        after checking, on their SEPM version, that SEPM's record follows the files."""
        account = await self._session.account()
        return account.get("certificate_swap") == "files"

    def _console_step(self) -> ManualHostOperations:
        if self._console is None:
            raise HostOperationError(CONSOLE_REQUIRED, code="CONSOLE_REQUIRED")
        return self._console


def backup_id_of(backup_ref: str) -> str:
    """The script's backup id from "winrm:<id>:<fingerprint>" (or a bare id)."""
    if backup_ref.startswith(WINRM_BACKUP_PREFIX):
        return backup_ref[len(WINRM_BACKUP_PREFIX) :].split(":", 1)[0]
    return backup_ref


def _port(server: ServerTarget, name: str) -> int:
    return int(server.ports.get(name, int(name)))
