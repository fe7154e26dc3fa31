"""How long the orchestrator remembers a POST's Idempotency-Key after its rotation ended: a
window too short for an ITSM's retry queue to be held over a long weekend is refused at start,
naming the variable."""

from __future__ import annotations

import secrets

import pytest

from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.settings import SettingsError, load_settings
from orchestrator.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTROTATE_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN", secrets.token_urlsafe(32))


def test_the_default_covers_a_retry_days_later() -> None:
    assert load_settings(Settings).idempotency_key_days == 30


@pytest.mark.parametrize("value", ["6.5", "0", "-1", "nan", "inf"])
def test_a_window_shorter_than_a_week_or_without_end_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CERTROTATE_ORCHESTRATOR_IDEMPOTENCY_KEY_DAYS", value)
    with pytest.raises(SettingsError) as err:
        load_settings(Settings)
    [line] = [ln for ln in str(err.value).splitlines() if "IDEMPOTENCY_KEY_DAYS" in ln]
    assert "CERTROTATE_ORCHESTRATOR_IDEMPOTENCY_KEY_DAYS" in line
    assert "7" in line or "finite" in line


def test_a_longer_window_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTROTATE_ORCHESTRATOR_IDEMPOTENCY_KEY_DAYS", "90")
    assert load_settings(Settings).idempotency_key_days == 90
