"""What a certificate backup reference names, read strictly.

A backup reference comes back from the certificates service's records when retention asks for
the backup's deletion. A record is data, and a hostile or corrupted one must not turn a delete
into the deletion of anything else on a SEPM host: each driver accepts only the exact shape of
the ids it makes, and refuses the rest before acting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from certrotate_shared.hostops.base import HostOperationError

NOT_OURS = "NOT_A_CERTROTATE_BACKUP"
# Backup-SepmCertificate.ps1: "<UTC yyyyMMddTHHmmssZ>-<first 8 hex of sha256(key)>". The
# removal script holds the same pattern (a unit test compares them).
WINRM_BACKUP_ID_PATTERN = r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}"
# The manual driver's backups are kept in a folder named after the backup task.
MANUAL_BACKUP_ID_PATTERN = r"task-[0-9a-f]{20}"
# The twin's host agent numbers its backups.
TWIN_BACKUP_ID_PATTERN = r"backup-[0-9]{1,18}"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_SHAPES = {
    "winrm": re.compile(WINRM_BACKUP_ID_PATTERN),
    "manual": re.compile(MANUAL_BACKUP_ID_PATTERN),
}


@dataclass(frozen=True)
class BackupRef:
    source: str  # winrm | manual
    backup_id: str
    fingerprint: str  # sha256 of the certificate the backup holds


def refused(backup_ref: str, why: str) -> HostOperationError:
    shown = backup_ref[:100].encode("unicode_escape").decode()
    return HostOperationError(
        f"backup reference {shown!r} is not one certrotate made ({why}); nothing was deleted",
        code=NOT_OURS,
    )


def read_backup_ref(
    backup_ref: str, *, sources: tuple[str, ...] = ("winrm", "manual")
) -> BackupRef:
    """ "winrm:<id>:<sha256>" or "manual:<task id>:<sha256>", every part in its exact shape."""
    source, _, rest = backup_ref.partition(":")
    backup_id, _, fingerprint = rest.partition(":")
    shape = _SHAPES.get(source)
    if source not in sources or shape is None:
        raise refused(backup_ref, f"expected a {' or '.join(sources)} backup")
    if not shape.fullmatch(backup_id):
        raise refused(backup_ref, f"a {source} backup id looks like {shape.pattern}")
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise refused(backup_ref, "it does not end with the certificate's sha256")
    return BackupRef(source, backup_id, fingerprint)


def twin_backup_id(backup_ref: str) -> str:
    """The twin host agent's backup id (it goes into a URL path)."""
    if not re.fullmatch(TWIN_BACKUP_ID_PATTERN, backup_ref):
        raise refused(backup_ref, f"a twin backup id looks like {TWIN_BACKUP_ID_PATTERN}")
    return backup_ref
