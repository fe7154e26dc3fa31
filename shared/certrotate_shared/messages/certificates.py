"""Messages of the certificates service: verification setting, install, verify, roll back."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from certrotate_shared.messages.common import GroupTarget, ServerTarget, SiteTarget
from certrotate_shared.registry import Command, Event, register


class _CertificatesCommand(Command):
    service: ClassVar[str] = "certificates"


class GroupVerification(BaseModel):
    """One group after a change: its locations' original values and the serial that resulted."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    group_id: str
    full_path_name: str
    original_values: dict[str, bool]  # location id -> secure_communications before we changed it
    target_serial: str

    def as_target(self) -> GroupTarget:
        return GroupTarget(
            group_id=self.group_id,
            full_path_name=self.full_path_name,
            target_serial=self.target_serial,
        )


@register
class SetCertificateVerification(_CertificatesCommand):
    """Steps 2 and 5 (and compensation) over every group and location of the site.

    mode "disable" turns secure communications off everywhere and records the original
    values; "restore" puts back exactly what "disable" recorded for this saga.
    """

    site: SiteTarget
    mode: Literal["disable", "restore"]
    # restore: the originals the orchestrator recorded from the disable step. The worker puts
    # back exactly these and reports a failure when any of them could not be restored; it
    # never reports an empty restore as done (None: older producers, the worker's own record).
    originals: list[GroupVerification] | None = None


@register
class CheckCertificateVerification(_CertificatesCommand):
    """The gate before the swap: re-read every group and location's secure_communications.

    Another administrator may have turned verification back on during the week-long wait.
    """

    site: SiteTarget


class LocationVerification(BaseModel):
    """One location whose secure_communications was read back from SEPM."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    group_id: str
    full_path_name: str
    location_id: str
    secure_communications: bool


@register
class CertificateVerificationChecked(Event):
    site: str
    # Locations that still (or again) verify the server certificate: the swap must not run.
    enabled: list[LocationVerification]
    locations_checked: int


@register
class CertificateVerificationCheckFailed(Event):
    site: str
    reason: str
    retryable: bool


@register
class CertificateVerificationSet(Event):
    site: str
    mode: Literal["disable", "restore"]
    groups: list[GroupVerification]


@register
class CertificateVerificationFailed(Event):
    site: str
    mode: Literal["disable", "restore"]
    reason: str
    retryable: bool


@register
class UpdateServerCertificate(_CertificatesCommand):
    """Step 4 for one server: back up, install, restart services, verify every TLS port."""

    site: SiteTarget
    server: ServerTarget
    bundle_ref: str
    expected_fingerprint: str


@register
class ServerCertificateUpdated(Event):
    site: str
    server: str
    fingerprint: str
    backup_ref: str
    ports_verified: dict[str, str]  # port name -> fingerprint seen in the handshake
    previous_fingerprint: str | None = None  # what the server presented before the swap


@register
class ServerCertificateUpdateFailed(Event):
    site: str
    server: str
    stage: Literal["backup", "install", "restart", "verify"]
    reason: str
    retryable: bool
    backup_ref: str | None = None
    # What the server presented before this attempt touched it (known once a backup exists):
    # the fingerprint a rollback of this server must bring back.
    previous_fingerprint: str | None = None


@register
class RollbackServerCertificate(_CertificatesCommand):
    """Put the backed-up certificate back, restart, and verify the old fingerprint is served."""

    site: SiteTarget
    server: ServerTarget
    backup_ref: str
    expected_fingerprint: str


@register
class ServerCertificateRolledBack(Event):
    site: str
    server: str
    fingerprint: str


@register
class ServerCertificateRollbackFailed(Event):
    site: str
    server: str
    reason: str
    retryable: bool


@register
class PurgeCertificateBundle(_CertificatesCommand):
    """The rotation ended: destroy the uploaded bundle and its password."""

    bundle_ref: str


@register
class CertificateBundlePurged(Event):
    bundle_ref: str


@register
class DeleteServerBackup(_CertificatesCommand):
    """A rotation's retention is over: delete one server's certificate backup from its host.

    The certificates service queues it itself from its own backup records when the
    orchestrator's retention job asks (POST /internal/v1/retention/purge); sites and servers
    are names, resolved from what the orchestrator published, and the backup is the record's.
    """

    site: str
    server: str


@register
class ServerBackupDeleted(Event):
    """The backup's files are gone from the host (already_gone: an earlier run, or a person,
    deleted them) and certrotate's record of it is purged."""

    site: str
    server: str
    backup_ref: str
    already_gone: bool = False


@register
class ServerBackupDeletionFailed(Event):
    """The backup could not be deleted; its record stays, naming where it is."""

    site: str
    server: str
    backup_ref: str
    reason: str
    retryable: bool
