"""The host-operations interface: certificate backup/install/restore (and the backup's deletion
after retention), service restarts and replication partner delete/re-add, on the Windows host
of a management server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from certrotate_shared.messages.common import ServerTarget, SiteTarget

SEPM_SERVICES = ("semsrv", "semwebsrv", "semapisrv")


@dataclass(frozen=True)
class CertificateBundle:
    """A certificate with its private key as uploaded; repr never shows the secrets."""

    format: Literal["pkcs12", "jks", "pem"]
    data: bytes = field(repr=False)
    password: str | None = field(default=None, repr=False)
    key: bytes | None = field(default=None, repr=False)  # PEM private key, for format "pem"
    # Where an operator can fetch it (the certificate store's reference) and its certificate's
    # sha256 once validated; optional, used by the manual driver's instructions.
    ref: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class CertificateBackup:
    backup_ref: str
    fingerprint: str  # sha256 hex of the backed-up certificate (what rollback must serve again)


class HostOperationError(Exception):
    """The host refused or failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        # The host's own error code when it gave one (e.g. "ALREADY_PARTNERS", "WRONG_PASSWORD").
        self.code = code
        # The HTTP status, when the host answered over HTTP (the twin's host agent).
        self.status: int | None = None


@dataclass(frozen=True)
class OperatorTask:
    """Work for a person, with instructions precise enough to follow at 3 a.m."""

    task_id: str
    title: str
    instructions: str
    verification: str
    server: str | None = None


class ManualTaskPending(Exception):
    """Raised by the manual driver: a person must act; the worker waits for the confirmation."""

    def __init__(self, task: OperatorTask) -> None:
        super().__init__(task.title)
        self.task = task


class ManualTaskNotVerified(HostOperationError):
    """The operator confirmed a task, but what we observe does not match; the task stays open."""

    def __init__(self, task: OperatorTask, reason: str) -> None:
        super().__init__(f"{task.title}: confirmed, but {reason}", code="NOT_VERIFIED")
        self.task = task
        self.reason = reason


class HostOperations(Protocol):
    """Every call carries an idempotency key; repeating a key repeats nothing."""

    async def backup_certificate(self, server: ServerTarget, *, key: str) -> CertificateBackup: ...

    async def install_certificate(
        self, server: ServerTarget, bundle: CertificateBundle, *, key: str
    ) -> None: ...

    async def restore_certificate(
        self, server: ServerTarget, backup_ref: str, *, key: str
    ) -> None: ...

    async def delete_certificate_backup(
        self, server: ServerTarget, backup_ref: str, *, key: str
    ) -> bool:
        """Delete a backup this driver made (its rotation's retention is over): True when it
        was deleted now, False when it was already gone (both mean it is gone). A reference
        of another shape is refused (code NOT_A_CERTROTATE_BACKUP) before anything is done."""
        ...

    async def restart_service(self, server: ServerTarget, service: str, *, key: str) -> None:
        """Stop then start one of SEPM_SERVICES; raises HostOperationError if it fails to start."""
        ...

    async def delete_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        """Delete `partner` from `site`'s partners; with on_partner_side, delete `site` from
        `partner`'s (partnerships are configured per site: a break does both sides)."""
        ...

    async def add_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        """Re-add `partner` on `site` (overwrites the partner's database with the site's); with
        on_partner_side, re-add `site` on `partner`'s side."""
        ...

    async def close(self) -> None: ...


def services_to_restart(version: str) -> list[str]:
    """semsrv and semwebsrv always; semapisrv only on 14.0 and later (the vendor procedure, step 4)."""
    major = int(version.split(".", 1)[0]) if version[:1].isdigit() else 0
    return list(SEPM_SERVICES) if major >= 14 else list(SEPM_SERVICES[:2])
