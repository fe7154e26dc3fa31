"""`certrotate vault rekey`: after a master key rotation, seal every stored secret again under
the new key, so the previous key can be removed from the settings.

The procedure (every service reads the same variables):
1. `certrotate keygen` makes the new key. Set CERTROTATE_MASTER_KEY to it and
   CERTROTATE_PREVIOUS_MASTER_KEYS to a JSON list holding the old one; restart every service.
   New secrets are sealed under the new key; old ones stay readable (each sealed value carries
   the id of the key that sealed it).
2. Run `certrotate vault rekey` with the same variables (and the certificates service's
   database, CERTROTATE_CERTIFICATES_DATABASE_URL, to re-seal stored bundles too).
3. Remove the old key from CERTROTATE_PREVIOUS_MASTER_KEYS and restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic_settings import SettingsConfigDict

from certrotate_shared.db import make_engine
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.settings import ServiceSettings
from certrotate_shared.vault import Vault


class RekeySettings(ServiceSettings):
    """Only the shared variables count here (CERTROTATE_MASTER_KEY, ..._PREVIOUS_MASTER_KEYS,
    ..._VAULT_URL, ..._VAULT_SCHEMA)."""

    service = "rekey"
    model_config = SettingsConfigDict(
        env_prefix="CERTROTATE_REKEY_", extra="ignore", hide_input_in_errors=True
    )


@dataclass(frozen=True)
class Rekeyed:
    key_id: str
    vault_entries: int
    bundles: int | None  # None: the certificates database was not given


async def rekey(
    settings: ServiceSettings, *, certificates_url: str | None, certificates_schema: str
) -> Rekeyed:
    """Re-seal the vault (and the certificates store's bundles) under settings.master_key."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from certificates.adapters.store import rekey_bundles

    vault = Vault.from_settings(settings)
    try:
        entries = await vault.rekey()
    finally:
        await vault.stop()
    bundles: int | None = None
    if certificates_url:
        box = SecretBox(settings.master_key_bytes(), settings.previous_master_key_bytes())
        engine = make_engine(certificates_url, certificates_schema)
        try:
            async with async_sessionmaker(engine)() as session:
                bundles = await rekey_bundles(session, box)
                await session.commit()
        finally:
            await engine.dispose()
    return Rekeyed(SecretBox(settings.master_key_bytes()).key_id, entries, bundles)
