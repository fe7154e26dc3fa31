"""Which errors are worth waiting out, and what a command that cannot succeed answers.

One classification for every worker (the consumer, the certificates job runner, the
replication worker): a *transient* error (the network, a timeout, SEPM 5xx/429, the database or
the vault unavailable) is retried with back-off for as long as it lasts, because the world will
change; anything else is *permanent* (or unknown, which we treat the same): it gets a bounded
number of attempts, then the command is answered with its typed failure event, so the saga that
sent it is told instead of waiting for an answer that never comes.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import exc as sa_exc

from certrotate_shared.envelope import Event, Message
from certrotate_shared.hostops.base import HostOperationError
from certrotate_shared.logs import redact
from certrotate_shared.messages.certificates import (
    CertificateVerificationCheckFailed,
    CertificateVerificationFailed,
    CheckCertificateVerification,
    DeleteServerBackup,
    RollbackServerCertificate,
    ServerBackupDeletionFailed,
    ServerCertificateRollbackFailed,
    ServerCertificateUpdateFailed,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    PropagationWatchFailed,
)
from certrotate_shared.messages.operator_tasks import (
    ConfirmOperatorTask,
    OperatorTaskVerificationFailed,
)
from certrotate_shared.messages.replication import (
    BreakReplication,
    InspectSite,
    ReplicationBreakFailed,
    ReplicationRestoreFailed,
    RestoreReplication,
    SiteInspectionFailed,
)
from certrotate_shared.retryable import TransientError
from certrotate_shared.sepm.api import SepmError

MAX_REASON = 500

# SQLSTATE classes that say "not now" rather than "never": connection exceptions (08),
# transaction rollbacks such as serialization failures and deadlocks (40), insufficient
# resources (53), operator intervention such as a shutdown or a restart (57), lock not
# available (55P03).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_SQLSTATES = ("55P03",)
# SQLite's own "not now": another writer holds the file.
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "disk i/o error")


def is_transient(exc: BaseException) -> bool:
    """True if trying the same thing again later can succeed without anyone changing it."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, SepmError | HostOperationError):
        # They know best: 5xx, 429 and unreachable are retryable; 4xx, refused accounts and
        # untrusted certificates are not.
        return exc.retryable
    if getattr(exc, "retriable", False) is True:
        return True  # the broker's own verdict (aiokafka: not leader, timeouts, connection)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # an untrusted certificate stays untrusted
    if isinstance(exc, OSError | TimeoutError | httpx.TransportError):
        return True
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # the connection pool is exhausted, or a connection was lost
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or _transient_database_error(exc)
    return _transient_driver_error(exc)


def _transient_database_error(exc: sa_exc.DBAPIError) -> bool:
    if isinstance(exc.orig, OSError | TimeoutError):
        return True
    state = _sqlstate(exc)
    if state is not None:
        return state.startswith(_TRANSIENT_SQLSTATE_CLASSES) or state in _TRANSIENT_SQLSTATES
    if isinstance(exc, sa_exc.OperationalError):
        text = str(exc.orig).lower()
        return any(marker in text for marker in _TRANSIENT_SQLITE)
    return isinstance(exc, sa_exc.InterfaceError)


def _transient_driver_error(exc: BaseException) -> bool:
    """asyncpg errors that escape SQLAlchemy (the vault's and LISTEN's own connections)."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency of shared
        return False
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return True  # "connection is closed", "another operation is in progress"
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(_TRANSIENT_SQLSTATE_CLASSES) or state in _TRANSIENT_SQLSTATES
    return False


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, wherever the driver put it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and state:
            return state
        current = getattr(current, "orig", None) or current.__cause__
    return None


def describe(exc: BaseException) -> str:
    """The error as one line a person can act on, without SQL parameters or secrets."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        # str() of a statement error carries the SQL and its parameters (sealed secrets, bundles).
        detail = str(exc.orig)
    else:
        detail = str(exc)
    first_line = detail.strip().splitlines()[0] if detail.strip() else ""
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    text = redact(text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, jitter: float = 0.2) -> float:
    """Exponential back-off with jitter, so that many workers do not come back in lockstep."""
    delay = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return delay * (1 + jitter * random.random())


# What each command answers when it cannot succeed. A row per command with a typed failure;
# a command without one (a purge, a cancel) is parked in the DLQ, which is reported too.
_FAILURES: dict[type[Message], Callable[[Any, str], Event]] = {
    InspectSite: lambda c, r: SiteInspectionFailed(site=_site(c), reason=r, retryable=False),
    BreakReplication: lambda c, r: ReplicationBreakFailed(
        site=_site(c), reason=r, retryable=False, broken_partners=[]
    ),
    RestoreReplication: lambda c, r: ReplicationRestoreFailed(
        site=_site(c), reason=r, retryable=False
    ),
    SetCertificateVerification: lambda c, r: CertificateVerificationFailed(
        site=_site(c), mode=c.mode, reason=r, retryable=False
    ),
    CheckCertificateVerification: lambda c, r: CertificateVerificationCheckFailed(
        site=_site(c), reason=r, retryable=False
    ),
    # The stage is unknown: "install" tells the orchestrator that the server may have been
    # touched, so it rolls back from the backup rather than assume nothing changed.
    UpdateServerCertificate: lambda c, r: ServerCertificateUpdateFailed(
        site=_site(c), server=c.server.name, stage="install", reason=r, retryable=False
    ),
    RollbackServerCertificate: lambda c, r: ServerCertificateRollbackFailed(
        site=_site(c), server=c.server.name, reason=r, retryable=False
    ),
    AwaitPolicyPropagation: lambda c, r: PropagationWatchFailed(
        site=_site(c), watch_id=c.watch_id, reason=r, retryable=False
    ),
    ConfirmOperatorTask: lambda c, r: OperatorTaskVerificationFailed(task_id=c.task_id, reason=r),
    # The backup_ref is the record's, which the command does not carry: the reason names it.
    DeleteServerBackup: lambda c, r: ServerBackupDeletionFailed(
        site=c.site, server=c.server, backup_ref="", reason=r, retryable=False
    ),
}


def _site(command: Any) -> str:
    return str(command.site.site)


def typed_failure(command: Message, reason: str) -> Event | None:
    """The failure event that answers `command`, or None if it has no typed failure."""
    build = _FAILURES.get(type(command))
    return build(command, reason) if build is not None else None
