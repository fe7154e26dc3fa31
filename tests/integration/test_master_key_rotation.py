"""Rotating the master key (issue 11, Low): with the new key current and the old one listed
as previous, everything sealed before stays readable; `certrotate vault rekey` seals the vault's
entries and the certificates store's bundles again under the new key, after which the old key
can be dropped. On SQLite (embedded) and PostgreSQL (distributed)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from certificates.adapters import store
from certificates.bootstrap import build_runtime as build_certificates
from certificates.settings import Settings as CertificatesSettings
from certrotate.cli import main
from certrotate_shared.clock import ManualClock
from certrotate_shared.db import make_engine
from certrotate_shared.envelope import utcnow
from certrotate_shared.secretbox import SecretBox, SecretBoxError, generate_master_key
from certrotate_shared.tables import vault_secrets
from certrotate_shared.vault import Vault
from tests.integration.certificates.conftest import TOKEN, api_client
from tests.support.pki import TestCA, now_utc

pytestmark = pytest.mark.integration

PASSWORD = "Kq9-rotation-bundle-password"


def key(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


@pytest.fixture(params=["sqlite", "postgres"])
def places(request, tmp_path, pg_url, pg_schemas) -> dict[str, str]:
    if request.param == "sqlite":
        return {
            "vault_url": f"sqlite+aiosqlite:///{tmp_path}/vault.db", "vault_schema": "vault",
            "certificates_url": f"sqlite+aiosqlite:///{tmp_path}/certificates.db",
            "certificates_schema": "certificates",
        }  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    pg_schemas.extend([f"vault_{suffix}", f"cert_{suffix}"])
    return {
        "vault_url": pg_url, "vault_schema": f"vault_{suffix}",
        "certificates_url": pg_url, "certificates_schema": f"cert_{suffix}",
    }  # fmt: skip


async def store_secrets(places: dict[str, str], old: str) -> str:
    vault = Vault(places["vault_url"], key(old), schema=places["vault_schema"])
    await vault.put("site/a/sepm", "sepm_account", {"password": "sepm-pass"})
    # One entry sealed the way values were sealed before key ids existed.
    nonce = b"\x00" * 12
    legacy = nonce + AESGCM(key(old)).encrypt(nonce, b'{"password": "winrm-pass"}', b"site/a/winrm")
    engine = make_engine(places["vault_url"], places["vault_schema"])
    async with engine.begin() as conn:
        await conn.execute(insert(vault_secrets).values(
            ref="site/a/winrm", kind="winrm_account", sealed=legacy, description="",
            updated_at=utcnow()))  # fmt: skip
    await engine.dispose()
    await vault.stop()

    certificates = build_certificates(
        CertificatesSettings(
            database_url=places["certificates_url"],
            database_schema=places["certificates_schema"],
            vault_url=places["vault_url"], vault_schema=places["vault_schema"],
            transport="local", local_log_path=f"/tmp/rekey-{uuid.uuid4().hex}.db",
            master_key=old, internal_token=TOKEN,
        ),
        clock=ManualClock(now_utc()),
    )  # fmt: skip
    await certificates.start(serve_http=False)
    try:
        good = TestCA.root().intermediate().issue(["sepm-a1.corp"], days=200)
        async with api_client(certificates) as http:
            body = {"site": "", "hostnames": [], **good.upload("pkcs12", PASSWORD)}
            stored = await http.post("/internal/v1/bundles", json=body)
        assert stored.status_code == 201, stored.text
        return str(stored.json()["bundle_ref"])
    finally:
        await certificates.stop()


async def read_back(places: dict[str, str], box_keys: list[str], bundle_ref: str) -> list[Any]:
    keys = [key(k) for k in box_keys]
    vault = Vault(places["vault_url"], keys[0], schema=places["vault_schema"],
                  previous_keys=keys[1:])  # fmt: skip
    try:
        found: list[Any] = [await vault.get("site/a/sepm"), await vault.get("site/a/winrm")]
    finally:
        await vault.stop()
    engine = make_engine(places["certificates_url"], places["certificates_schema"])
    try:
        async with async_sessionmaker(engine)() as session:
            bundle = await store.opened_bundle(session, SecretBox(keys[0], keys[1:]), bundle_ref)
    finally:
        await engine.dispose()
    assert bundle is not None
    return [*found, bundle.password]


def test_a_master_key_is_rotated_and_the_old_one_dropped_after_rekey(places, monkeypatch):
    old, new = generate_master_key(), generate_master_key()
    bundle_ref = asyncio.run(store_secrets(places, old))
    expected = [{"password": "sepm-pass"}, {"password": "winrm-pass"}, PASSWORD]

    # The new key is current, the old one previous: everything is still readable.
    assert asyncio.run(read_back(places, [new, old], bundle_ref)) == expected
    with pytest.raises(SecretBoxError):
        asyncio.run(read_back(places, [new], bundle_ref))

    for name, value in {
        "CERTROTATE_MASTER_KEY": new,
        "CERTROTATE_PREVIOUS_MASTER_KEYS": json.dumps([old]),
        "CERTROTATE_VAULT_URL": places["vault_url"],
        "CERTROTATE_VAULT_SCHEMA": places["vault_schema"],
        "CERTROTATE_CERTIFICATES_DATABASE_URL": places["certificates_url"],
        "CERTROTATE_CERTIFICATES_DATABASE_SCHEMA": places["certificates_schema"],
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["vault", "rekey"])
    assert result.exit_code == 0, result.output
    assert "vault entries: 2, bundles: 1" in result.output
    assert old not in result.output and new not in result.output

    # The old key can go: the new one alone opens everything.
    assert asyncio.run(read_back(places, [new], bundle_ref)) == expected
    again = CliRunner().invoke(main, ["vault", "rekey"])
    assert "vault entries: 0, bundles: 0" in again.output
