"""Client lists as operators and the orchestrator read them: the columns, a stable order
(uniqueId), opaque cursors into that order, and the digest that names an accepted list.

The digest is the SHA-256 of the list's JSON-lines export (one `jsonl_line` per client, in
uniqueId order): whoever fetches an accepted list later can check it is the one accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

COLUMNS = (
    "uniqueId",
    "computerName",
    "groupFullPathName",
    "onlineStatus",
    "lastUpdateTime",
    "lastUpdateTimeUtc",
    "daysOffline",
    "profileSerialNo",
)
_CURSOR_PREFIX = "u1."


class InvalidCursorError(ValueError):
    """A cursor this service did not hand out."""


def encode_cursor(unique_id: str) -> str:
    """The cursor that continues after this client."""
    raw = base64.urlsafe_b64encode(unique_id.encode()).decode().rstrip("=")
    return _CURSOR_PREFIX + raw


def decode_cursor(cursor: str) -> str:
    """The uniqueId a cursor continues after; InvalidCursorError for anything else."""
    if not cursor.startswith(_CURSOR_PREFIX):
        raise InvalidCursorError("not a cursor of this list")
    raw = cursor[len(_CURSOR_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursorError("not a cursor of this list") from None


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def exported(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored client row (the tables' column names) as the lists show it."""
    return {
        "uniqueId": stored["unique_id"],
        "computerName": stored["computer_name"],
        "groupFullPathName": stored["group_path"],
        "onlineStatus": 1 if stored["online"] else 0,
        "lastUpdateTime": stored["last_update_ms"],
        "lastUpdateTimeUtc": iso_ms(stored["last_update_ms"]),
        "daysOffline": stored["days_offline"],
        "profileSerialNo": stored["profile_serial"],
    }


def jsonl_line(row: dict[str, Any]) -> bytes:
    """One client of a JSON-lines export (also what the digest is computed over)."""
    return orjson.dumps(row) + b"\n"


class ListDigest:
    """SHA-256 and count of a list, fed client by client in export order."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self._sha.update(jsonl_line(row))
        self.count += 1

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()
