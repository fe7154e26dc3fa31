"""Where the sealed SEPM and WinRM accounts are kept, and the master keys that seal them: a
service refuses to start with a placeholder or malformed key."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, Field, SecretStr, field_validator

# Keys that appear in docs and examples; a service must never run with one of them.
_PLACEHOLDER_KEYS = {"", "changeme", "change-me", "secret", "default", "dev", "test"}


def _check_master_key(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    if raw.strip().lower() in _PLACEHOLDER_KEYS:
        raise ValueError(
            "a master key is required: generate one with `certrotate keygen` and set it"
        )
    try:
        key = base64.urlsafe_b64decode(raw.encode())
    except (binascii.Error, ValueError):
        raise ValueError("the master key must be base64 (urlsafe) of 32 bytes") from None
    if len(key) != 32:
        raise ValueError(f"the master key must decode to 32 bytes, not {len(key)}")
    return value


class SecretSettings(BaseModel):
    """The vault every service reads its accounts from, and the keys it is sealed with."""

    vault_url: str = Field(
        default="sqlite+aiosqlite:///var/vault.db",
        description=(
            "Where the vault keeps sealed SEPM and WinRM accounts (same URL for every service)."
        ),
    )
    vault_schema: str = Field(
        default="vault",
        description="PostgreSQL schema of the vault (shared by every service that reads secrets).",
    )
    master_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "32 random bytes, base64 (`certrotate keygen`); seals secrets at rest. Same for all."
        ),
    )
    previous_master_keys: list[SecretStr] = Field(
        default=[],
        description=(
            "Master keys replaced by master_key (a JSON list, newest first): what they sealed"
            " stays readable until `certrotate vault rekey` has sealed it again under the "
            "current key."
        ),
    )

    @field_validator("master_key")
    @classmethod
    def _real_key(cls, value: SecretStr) -> SecretStr:
        return _check_master_key(value)

    @field_validator("previous_master_keys")
    @classmethod
    def _real_previous_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            _check_master_key(key)
        return value

    def master_key_bytes(self) -> bytes:
        return base64.urlsafe_b64decode(self.master_key.get_secret_value().encode())

    def previous_master_key_bytes(self) -> list[bytes]:
        return [
            base64.urlsafe_b64decode(k.get_secret_value().encode())
            for k in self.previous_master_keys
        ]
