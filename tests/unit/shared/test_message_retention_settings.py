"""How long each service's inbox remembers a message: long enough that Kafka cannot deliver it
again after it is forgotten, and a value below that is refused at start, naming the variable."""

from __future__ import annotations

import pytest

from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.settings import (
    ServiceSettings,
    SettingsConfigDict,
    SettingsError,
    load_settings,
)

pytestmark = pytest.mark.unit


class DemoSettings(ServiceSettings):
    service = "replication"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_REPLICATION_")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generate_master_key())


def test_the_default_outlasts_what_the_broker_can_redeliver() -> None:
    settings = load_settings(DemoSettings)
    # Kafka as deploy/ runs it keeps a record up to log.retention.hours (168) after its
    # segment's newest record, and a segment spans up to log.roll.hours (168): 14 days.
    assert settings.inbox_retention_days >= 14 * 2


@pytest.mark.parametrize("value", ["13.5", "7", "0", "-1", "nan"])
def test_a_window_shorter_than_the_brokers_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CERTROTATE_INBOX_RETENTION_DAYS", value)
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings)
    text = str(err.value)
    assert "CERTROTATE_REPLICATION_INBOX_RETENTION_DAYS" in text
    assert "at least 14 days" in text
    assert "twice" in text  # why: a message the inbox forgot would be handled twice


def test_a_longer_window_for_a_broker_that_keeps_more_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CERTROTATE_REPLICATION_INBOX_RETENTION_DAYS", "60")
    assert load_settings(DemoSettings).inbox_retention_days == 60


def test_a_window_without_end_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTROTATE_INBOX_RETENTION_DAYS", "inf")
    with pytest.raises(SettingsError, match="finite number of days"):
        load_settings(DemoSettings)
