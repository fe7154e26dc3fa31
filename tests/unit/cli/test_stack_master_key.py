"""The master key that sealed the secrets of a data dir is never lost or silently replaced.

An operator who sets CERTROTATE_MASTER_KEY once, or unsets it later, or sets another one, must
not end up with a vault whose every sealed secret is unreadable: the key kept in secrets.json
stays there, and a start with a key that does not match the one in use refuses with a message
that says what to do and quotes no secret.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from certrotate.stack import MasterKeyMismatchError, stack_secrets
from certrotate_shared.secretbox import generate_master_key

pytestmark = pytest.mark.unit

SECRET_VARIABLES = (
    "CERTROTATE_MASTER_KEY",
    "CERTROTATE_INTERNAL_TOKEN",
    "CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN",
)


@pytest.fixture(autouse=True)
def no_secret_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _stored(data_dir: Path) -> dict[str, str]:
    return json.loads((data_dir / "secrets.json").read_text())


def test_setting_the_key_once_keeps_the_generated_key_and_refuses_the_other_key(
    tmp_path, monkeypatch
):
    generated = stack_secrets(tmp_path)["master_key"]
    other = generate_master_key()
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", other)
    with pytest.raises(MasterKeyMismatchError) as refused:
        stack_secrets(tmp_path)
    message = str(refused.value)
    assert "CERTROTATE_MASTER_KEY" in message
    assert other not in message and generated not in message
    # The key that sealed the vault is still on disk: unsetting the variable recovers it.
    assert _stored(tmp_path)["master_key"] == generated
    monkeypatch.delenv("CERTROTATE_MASTER_KEY")
    assert stack_secrets(tmp_path)["master_key"] == generated


def test_the_same_key_given_in_the_environment_is_accepted(tmp_path, monkeypatch):
    generated = stack_secrets(tmp_path)["master_key"]
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generated)
    assert stack_secrets(tmp_path)["master_key"] == generated
    assert _stored(tmp_path)["master_key"] == generated


def test_a_key_given_in_the_environment_cannot_be_forgotten_later(tmp_path, monkeypatch):
    key = generate_master_key()
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", key)
    assert stack_secrets(tmp_path)["master_key"] == key
    assert key not in (tmp_path / "secrets.json").read_text()

    monkeypatch.delenv("CERTROTATE_MASTER_KEY")
    with pytest.raises(MasterKeyMismatchError) as missing:
        stack_secrets(tmp_path)
    assert "CERTROTATE_MASTER_KEY" in str(missing.value)
    assert key not in str(missing.value)
    assert "master_key" not in _stored(tmp_path)  # no new key was made behind the operator's back

    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generate_master_key())
    with pytest.raises(MasterKeyMismatchError):
        stack_secrets(tmp_path)
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", key)
    assert stack_secrets(tmp_path)["master_key"] == key


def test_a_data_dir_with_a_vault_but_no_record_of_its_key_is_not_given_a_new_key(tmp_path):
    # A data dir from before keys were recorded, whose key came from the environment.
    (tmp_path / "vault.db").write_bytes(b"sealed secrets")
    with pytest.raises(MasterKeyMismatchError):
        stack_secrets(tmp_path)
    assert not (tmp_path / "secrets.json").exists() or "master_key" not in _stored(tmp_path)


def test_tokens_given_in_the_environment_never_drop_the_stored_ones(tmp_path, monkeypatch):
    first = stack_secrets(tmp_path)
    monkeypatch.setenv("CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN", "operator-chosen-admin-token-0123")
    assert stack_secrets(tmp_path)["admin_token"] == "operator-chosen-admin-token-0123"
    assert _stored(tmp_path)["admin_token"] == first["admin_token"]


def test_secrets_file_is_replaced_atomically_and_private(tmp_path, monkeypatch):
    stack_secrets(tmp_path)
    path = tmp_path / "secrets.json"
    inode = path.stat().st_ino
    # An update of the file (a value newly kept) replaces it whole, never truncates it in place.
    data = _stored(tmp_path)
    del data["internal_token"]
    path.write_text(json.dumps(data))
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((str(src), str(dst)))
        assert stat.S_IMODE(os.stat(src).st_mode) == 0o600
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    stack_secrets(tmp_path)
    assert replaced and replaced[-1][1] == str(path)
    assert path.stat().st_ino != inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(_stored(tmp_path)) >= {"master_key", "internal_token", "admin_token"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secrets")] == []


def test_the_data_dir_is_private(tmp_path):
    data_dir = tmp_path / "up"
    stack_secrets(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    data_dir.chmod(0o755)
    stack_secrets(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_up_refuses_to_start_with_another_master_key_and_says_why(tmp_path, monkeypatch, mode):
    from click.testing import CliRunner

    from certrotate.cli import main

    kept = stack_secrets(tmp_path)["master_key"]
    other = generate_master_key()
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", other)
    result = CliRunner().invoke(main, ["up", "--mode", mode, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "refusing to start" in result.output and "CERTROTATE_MASTER_KEY" in result.output
    assert other not in result.output and kept not in result.output
    assert "Traceback" not in result.output
