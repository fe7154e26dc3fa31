"""A stack's data dir: private to its owner, with the secrets it made once (secrets.json).

secrets.json keeps the master key certrotate generated, the internal and admin tokens, and a
check value of the master key in use. Values given in the environment are used, never written;
a value once stored is never dropped, so unsetting a variable falls back to what was there.
The check value is how a start notices it was given another master key than the one that
sealed the vault: it refuses, instead of running with every sealed secret unreadable.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from certrotate_shared.secretbox import generate_master_key

SECRETS_FILE = "secrets.json"
MASTER_KEY_ENV = "CERTROTATE_MASTER_KEY"
ENVIRONMENT = {
    "master_key": MASTER_KEY_ENV,
    "internal_token": "CERTROTATE_INTERNAL_TOKEN",
    "admin_token": "CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN",
}
GENERATORS: dict[str, Callable[[], str]] = {
    "master_key": generate_master_key,
    "internal_token": lambda: secrets.token_urlsafe(32),
    "admin_token": lambda: secrets.token_urlsafe(32),
}
# What marks a data dir whose vault already holds sealed secrets (embedded mode).
VAULT_FILE = "vault.db"


class MasterKeyMismatchError(RuntimeError):
    """The master key given is not the one that sealed this data dir's secrets (or is missing)."""


def master_key_check(key: str) -> str:
    """A value that tells two master keys apart and reveals nothing about either."""
    return hmac.new(key.encode(), b"certrotate master key check v1", hashlib.sha256).hexdigest()


def make_private_dir(data_dir: Path) -> None:
    """Create the data dir (and its parents) and make it readable by its owner only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)


def stack_secrets(data_dir: Path) -> dict[str, str]:
    """Master key, internal and admin tokens: from the environment, else made once and kept
    in the data dir; raises MasterKeyMismatchError rather than start with a key that cannot
    open what was sealed before."""
    make_private_dir(data_dir)
    path = data_dir / SECRETS_FILE
    stored = _read(path)
    given = {name: os.environ.get(variable) or None for name, variable in ENVIRONMENT.items()}
    kept = dict(stored)
    for name, value in given.items():
        if not value and not kept.get(name):
            if name == "master_key":
                _refuse_new_key(data_dir, stored)
            kept[name] = GENERATORS[name]()
    values = {name: given[name] or kept[name] for name in ENVIRONMENT}
    recorded = stored.get("master_key_check") or (
        master_key_check(stored["master_key"]) if stored.get("master_key") else None
    )
    if recorded is not None and not hmac.compare_digest(
        recorded, master_key_check(values["master_key"])
    ):
        raise MasterKeyMismatchError(_mismatch_message(data_dir, stored))
    kept["master_key_check"] = master_key_check(values["master_key"])
    if kept != stored:
        _write_atomically(path, kept)
    return values


def _refuse_new_key(data_dir: Path, stored: dict[str, str]) -> None:
    """No key given and none kept: only a data dir that never sealed anything gets a new one."""
    if stored.get("master_key_check"):
        raise MasterKeyMismatchError(
            f"the secrets in {data_dir} were sealed with a master key given in "
            f"{MASTER_KEY_ENV}, and it is not set now: set it to that key again "
            "(a new key would leave every stored secret unreadable)"
        )
    if (data_dir / VAULT_FILE).exists():
        raise MasterKeyMismatchError(
            f"{data_dir} holds a vault but no record of the master key that sealed it: set "
            f"{MASTER_KEY_ENV} to that key (a new key would leave every stored secret unreadable)"
        )


def _mismatch_message(data_dir: Path, stored: dict[str, str]) -> str:
    if stored.get("master_key"):
        return (
            f"{MASTER_KEY_ENV} is not the master key that sealed the secrets in {data_dir}; that "
            f"key is kept in {data_dir / SECRETS_FILE}: unset {MASTER_KEY_ENV} to use it, or set "
            "it to that key (changing the master key of a data dir is not supported)"
        )
    return (
        f"{MASTER_KEY_ENV} is not the master key that sealed the secrets in {data_dir}: set it "
        "to the key used before (changing the master key of a data dir is not supported)"
    )


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    # A copied or restored file keeps its mode; make it private before reading it.
    path.chmod(0o600)
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_atomically(path: Path, values: dict[str, str]) -> None:
    """Write a private temporary file beside it, flush it to disk, then rename it over: a crash
    leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(values, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
