"""The embedded stack's secrets.json holds the master key and the admin token: only its owner
may read it, even when the file was there before (copied, restored, made by hand)."""

from __future__ import annotations

import json
import stat

import pytest

from certrotate.stack import stack_secrets

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_secret_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CERTROTATE_MASTER_KEY",
        "CERTROTATE_INTERNAL_TOKEN",
        "CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_secrets_file_is_private(tmp_path):
    stack_secrets(tmp_path)
    assert _mode(tmp_path / "secrets.json") == 0o600


@pytest.mark.parametrize("complete", [False, True])
def test_a_readable_secrets_file_found_in_place_is_made_private(tmp_path, complete):
    first = stack_secrets(tmp_path / "first")
    path = tmp_path / "secrets.json"
    kept = first if complete else {"master_key": first["master_key"]}
    path.write_text(json.dumps(kept))
    path.chmod(0o644)
    again = stack_secrets(tmp_path)
    assert again["master_key"] == first["master_key"]
    assert _mode(path) == 0o600


def test_secrets_given_in_the_environment_are_used_but_never_written(tmp_path, monkeypatch):
    import json

    from certrotate.stack import stack_secrets
    from certrotate_shared.secretbox import generate_master_key

    key = generate_master_key()
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", key)
    values = stack_secrets(tmp_path)
    assert values["master_key"] == key
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert "master_key" not in stored
    assert key not in (tmp_path / "secrets.json").read_text()
    assert stack_secrets(tmp_path)["admin_token"] == stored["admin_token"]  # kept across runs
