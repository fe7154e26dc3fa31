from __future__ import annotations

import logging

import pytest

from certrotate_shared.logs import RedactingFormatter, redact
from certrotate_shared.secretbox import SecretBox, SecretBoxError, generate_master_key
from certrotate_shared.settings import (
    ServiceSettings,
    SettingsConfigDict,
    SettingsError,
    load_settings,
)

pytestmark = pytest.mark.unit


class DemoSettings(ServiceSettings):
    service = "client-monitor"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_CLIENT_MONITOR_")


def test_service_variables_override_the_shared_ones(monkeypatch):
    key = generate_master_key()
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", key)
    monkeypatch.setenv("CERTROTATE_KAFKA_BOOTSTRAP", "shared:9092")
    monkeypatch.setenv("CERTROTATE_CLIENT_MONITOR_KAFKA_BOOTSTRAP", "mine:9092")
    settings = load_settings(DemoSettings)
    assert settings.kafka_bootstrap == "mine:9092"
    assert settings.master_key_bytes() and len(settings.master_key_bytes()) == 32
    assert settings.schema_name() == "client_monitor"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "a master key is required"),
        ("changeme", "a master key is required"),
        ("c2hvcnQ=", "must decode to 32 bytes"),
        ("not base64 at all!!", "base64"),
    ],
)
def test_a_missing_or_placeholder_master_key_refuses_to_start(monkeypatch, value, message):
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", value)
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings)
    text = str(err.value)
    assert "CERTROTATE_CLIENT_MONITOR_MASTER_KEY" in text
    assert message in text
    if value:
        assert value not in text.replace("CERTROTATE", "")


def test_invalid_values_name_the_variable_to_fix(monkeypatch):
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("CERTROTATE_CLIENT_MONITOR_TRANSPORT", "carrier-pigeon")
    with pytest.raises(SettingsError, match="CERTROTATE_CLIENT_MONITOR_TRANSPORT"):
        load_settings(DemoSettings)


def test_the_database_pool_size_is_read_per_service_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generate_master_key())
    assert load_settings(DemoSettings).database_pool_size == 20
    monkeypatch.setenv("CERTROTATE_CLIENT_MONITOR_DATABASE_POOL_SIZE", "5")
    assert load_settings(DemoSettings).database_pool_size == 5
    monkeypatch.setenv("CERTROTATE_CLIENT_MONITOR_DATABASE_POOL_SIZE", "0")
    with pytest.raises(SettingsError, match="CERTROTATE_CLIENT_MONITOR_DATABASE_POOL_SIZE"):
        load_settings(DemoSettings)


def test_secretbox_round_trip_and_binding_to_context():
    box = SecretBox(b"k" * 32)
    sealed = box.seal(b"p@ssw0rd", "bundle/1")
    assert b"p@ssw0rd" not in sealed
    assert box.open(sealed, "bundle/1") == b"p@ssw0rd"
    with pytest.raises(SecretBoxError):
        box.open(sealed, "bundle/2")  # moved to another row
    with pytest.raises(SecretBoxError):
        SecretBox(b"x" * 32).open(sealed, "bundle/1")  # another key
    assert "k" * 8 not in repr(box)


def test_log_lines_lose_passwords_tokens_and_private_keys():
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"
    line = redact(f'login {{"username": "admin", "password": "hunter2"}} key {pem}')
    assert "hunter2" not in line and "MIIEvQ" not in line
    assert "admin" in line
    assert "hunter2" not in redact("Authorization: Bearer hunter2")
    assert "hunter2" not in redact("password=hunter2 next")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("abc123",), None)
    assert "abc123" not in RedactingFormatter("%(message)s").format(record)
