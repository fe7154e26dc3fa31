"""The internal bundle API and the certificate store, on the embedded stack (SQLite, in-process
transport): what the orchestrator sees for good and bad uploads, and what is kept at rest."""

from __future__ import annotations

import base64
import functools
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from certificates.bootstrap import build_runtime
from certificates.entrypoints.api import TOKEN_HEADER
from certificates.service_layer.housekeeping import purge_once
from certificates.settings import Settings
from certrotate_shared.clock import ManualClock
from certrotate_shared.messages.certificates import PurgeCertificateBundle
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.settings import SettingsError, load_settings
from tests.integration.certificates.conftest import TOKEN, EventProbe, api_client
from tests.support.pki import IssuedCertificate, TestCA, b64, now_utc

pytestmark = pytest.mark.integration

HOSTS = ["sepm-a1.corp.example", "10.0.0.5"]
PASSWORD = "Kq9-unique-bundle-password"


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA.root().intermediate()


@pytest.fixture(scope="module")
def good(ca: TestCA) -> IssuedCertificate:
    return ca.issue(HOSTS, days=200)


def settings_for(tmp: Path, master_key: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp}/certificates.db",
        vault_url=f"sqlite+aiosqlite:///{tmp}/vault.db",
        transport="local",
        local_log_path=str(tmp / "transport.db"),
        master_key=master_key,
        internal_token=TOKEN,
        **overrides,
    )


class Stack:
    def __init__(self, runtime: ServiceRuntime, clock: ManualClock, db: Path) -> None:
        self.runtime, self.clock, self.db = runtime, clock, db
        self.http = api_client(runtime)

    async def upload(self, fields: dict[str, Any], **extra: Any) -> Any:
        body = {"site": "site-a", "hostnames": HOSTS, "min_validity_days": 30, **fields, **extra}
        return await self.http.post("/internal/v1/bundles", json=body)

    def rows(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT * FROM bundles").fetchall()


@pytest.fixture
async def stack(tmp_path: Path, master_key: str) -> AsyncIterator[Stack]:
    clock = ManualClock(now_utc())
    runtime = build_runtime(settings_for(tmp_path, master_key), clock=clock)
    await runtime.start(serve_http=False)
    s = Stack(runtime, clock, tmp_path / "certificates.db")
    try:
        yield s
    finally:
        await s.http.aclose()
        await runtime.stop()


@pytest.mark.parametrize("fmt", ["pkcs12", "jks", "pem"])
async def test_a_good_bundle_is_stored_and_described(
    stack: Stack, good: IssuedCertificate, fmt: str
) -> None:
    response = await stack.upload(good.upload(fmt, PASSWORD))  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["fingerprint_sha256"] == good.fingerprint
    assert body["bundle_ref"].startswith("bnd_")
    assert set(body["sans"]) == set(HOSTS)
    assert "CN=sepm-a1.corp.example" in body["subject"]
    assert body["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert [r[0] for r in stack.rows()] == [body["bundle_ref"]]


def _bad_uploads(ca: TestCA, good: IssuedCertificate) -> dict[str, dict[str, Any]]:
    other = ca.issue(HOSTS, key_slot=12)
    whole = good.pkcs12(PASSWORD)
    return {
        "wrong_password": {**good.upload("pkcs12", PASSWORD), "password": "not-it"},
        "key_mismatch": {**good.upload("pem"), "key_b64": b64(other.key_pem())},
        "expired": ca.issue(HOSTS, not_before=now_utc() - timedelta(days=90), days=30).upload(
            "pem"
        ),
        "not_yet_valid": ca.issue(HOSTS, not_before=now_utc() + timedelta(days=2)).upload("pem"),
        "expiring_soon": ca.issue(HOSTS, days=10).upload("pem"),
        "weak_key": ca.issue(HOSTS, key_size=1024).upload("jks", PASSWORD),
        "san_missing": ca.issue(["other.corp.example"]).upload("pem"),
        "corrupt": {
            "format": "pkcs12",
            "data_b64": b64(whole[: len(whole) // 2]),
            "password": PASSWORD,
        },
        "no_private_key": {"format": "pem", "data_b64": b64(good.cert_pem())},
        "chain_order": {
            "format": "pem",
            "data_b64": b64(
                IssuedCertificate(good.certificate, good.key, good.chain[::-1]).pem_bundle()
            ),
            "key_b64": b64(good.key_pem()),
        },
        "chain_incomplete": {
            "format": "pem",
            "data_b64": b64(
                IssuedCertificate(good.certificate, good.key, good.chain[1:]).pem_bundle()
            ),
            "key_b64": b64(good.key_pem()),
        },
    }


async def test_each_bad_certificate_is_rejected_with_its_own_code_and_not_kept(
    stack: Stack, ca: TestCA, good: IssuedCertificate
) -> None:
    for code, fields in _bad_uploads(ca, good).items():
        response = await stack.upload(fields)
        assert response.status_code == 422, (code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == code, (code, problem)
        assert problem["detail"] and problem["title"] == "Certificate rejected"
    assert stack.rows() == []


async def test_missing_san_names_each_uncovered_host(stack: Stack, ca: TestCA) -> None:
    response = await stack.upload(ca.issue(["sepm-a1.corp.example"]).upload("pem"))
    problem = response.json()
    assert problem["code"] == "san_missing" and problem["missing"] == ["10.0.0.5"]


async def test_secrets_stay_out_of_logs_responses_and_the_database(
    stack: Stack, good: IssuedCertificate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_pem = good.key_pem()
    key_der_b64 = key_pem.split(b"\n")[1].decode()  # a line of the key's base64
    pem_fields = {**good.upload("pem"), "password": PASSWORD}
    p12 = good.upload("pkcs12", PASSWORD)
    responses = [
        await stack.upload(p12),
        await stack.upload(pem_fields),
        await stack.upload({**p12, "password": PASSWORD + "x"}),  # rejected: wrong password
        await stack.upload({**p12, "format": "rsa"}),  # rejected: invalid request
        await stack.upload({**pem_fields, "key_b64": "%%%" + PASSWORD}),  # not base64
    ]
    assert [r.status_code for r in responses] == [201, 201, 422, 422, 422]
    everything = caplog.text + "".join(r.text for r in responses)
    for secret in (PASSWORD, p12["data_b64"][:40], key_der_b64, pem_fields["key_b64"][:40]):
        assert secret not in everything
    raw_rows = repr(stack.rows()).encode()
    p12_bytes = base64.b64decode(p12["data_b64"])
    with sqlite3.connect(stack.db) as conn:
        sealed = b"".join(bytes(r[0]) for r in conn.execute("SELECT sealed FROM bundles"))
    for secret in (
        PASSWORD.encode(),
        key_pem[40:80],
        p12_bytes[100:140],
        PASSWORD.encode().hex().encode(),
    ):
        assert secret not in sealed and secret not in raw_rows


async def test_the_api_wants_the_internal_token(stack: Stack, good: IssuedCertificate) -> None:
    body = {"site": "site-a", "hostnames": HOSTS, **good.upload("pem")}
    for headers in ({TOKEN_HEADER: "wrong-token-wrong-token"}, {TOKEN_HEADER: ""}):
        response = await stack.http.post("/internal/v1/bundles", json=body, headers=headers)
        assert response.status_code == 401
    stack.http.headers.pop(TOKEN_HEADER)
    assert (await stack.http.post("/internal/v1/bundles", json=body)).status_code == 401
    assert stack.rows() == []


async def test_an_oversized_upload_is_refused(stack: Stack) -> None:
    assert isinstance(stack.runtime.settings, Settings)
    limit = stack.runtime.settings.max_bundle_request_bytes
    response = await stack.upload({"format": "pkcs12", "data_b64": "A" * limit, "password": "x"})
    assert response.status_code == 413
    assert stack.rows() == []


async def test_delete_and_purge_destroy_the_bundle(stack: Stack, good: IssuedCertificate) -> None:
    first = (await stack.upload(good.upload("pem"))).json()["bundle_ref"]
    second = (await stack.upload(good.upload("jks", PASSWORD))).json()["bundle_ref"]
    assert (await stack.http.delete(f"/internal/v1/bundles/{first}")).status_code == 204
    assert (await stack.http.delete(f"/internal/v1/bundles/{first}")).status_code == 404
    probe = EventProbe(bus=stack.runtime.transport, **_probe_settings(stack))
    async with probe:
        saga = str(uuid.uuid4())
        await probe.emit(
            PurgeCertificateBundle(idempotency_key=f"{saga}:purge:1", bundle_ref=second), saga
        )
        purged = await probe.wait_for("CertificateBundlePurged")
    assert purged.payload == {"bundle_ref": second}
    assert stack.rows() == []


async def test_unused_bundles_expire_after_the_ttl(stack: Stack, good: IssuedCertificate) -> None:
    ref = (await stack.upload(good.upload("pem"))).json()["bundle_ref"]
    assert isinstance(stack.runtime.settings, Settings)
    ttl = stack.runtime.settings.bundle_ttl_s
    assert isinstance(stack.runtime.spec.api, functools.partial)  # built with its deps
    deps = stack.runtime.spec.api.keywords["deps"]
    stack.clock.advance(ttl - 60)
    assert await purge_once(stack.runtime, deps) == []
    stack.clock.advance(120)
    assert await purge_once(stack.runtime, deps) == [ref]
    assert stack.rows() == []


def _probe_settings(stack: Stack) -> dict[str, Any]:
    settings = stack.runtime.settings
    return {
        "database_url": str(settings.database_url).replace("certificates.db", "probe.db"),
        "transport": "local",
        "local_log_path": settings.local_log_path,
        "master_key": settings.master_key.get_secret_value(),
    }


@pytest.mark.parametrize("token", ["", "changeme", "short"])
def test_the_service_refuses_to_start_without_a_real_internal_token(
    tmp_path: Path, master_key: str, token: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, master_key=master_key, internal_token=token)
    assert "CERTROTATE_CERTIFICATES_INTERNAL_TOKEN" in str(caught.value)


def test_the_service_refuses_to_start_without_a_master_key() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, master_key="changeme", internal_token=TOKEN)
    assert "CERTROTATE_CERTIFICATES_MASTER_KEY" in str(caught.value)


async def test_a_stored_bundle_is_checked_again_for_each_use_and_each_use_gets_its_own_copy(
    stack: Stack, good: IssuedCertificate
) -> None:
    # Uploaded on its own (POST /v1/bundles without a site): no names to check yet.
    upload = {"format": "jks", **good.upload("jks", PASSWORD)}
    stored = await stack.http.post("/internal/v1/bundles", json={**upload, "site": ""})
    assert stored.status_code == 201, stored.text
    ref = stored.json()["bundle_ref"]

    use = {"site": "site-a", "hostnames": HOSTS, "min_validity_days": 30}
    first = await stack.http.post(f"/internal/v1/bundles/{ref}/uses", json=use)
    assert first.status_code == 201, first.text
    copy = first.json()
    assert copy["fingerprint_sha256"] == good.fingerprint and copy["bundle_ref"] != ref
    assert PASSWORD not in first.text
    # A rotation's end purges its copy: the uploaded bundle stays usable for the next one.
    assert (
        await stack.http.delete(f"/internal/v1/bundles/{copy['bundle_ref']}")
    ).status_code == 204
    second = await stack.http.post(f"/internal/v1/bundles/{ref}/uses", json=use)
    assert second.status_code == 201, second.text

    # Another site's names are checked with the same pre-flight code as an inline upload.
    elsewhere = {**use, "site": "site-b", "hostnames": ["sepm-b1.corp.example"]}
    refused = await stack.http.post(f"/internal/v1/bundles/{ref}/uses", json=elsewhere)
    assert refused.status_code == 422 and refused.json()["code"] == "san_missing"
    # Checked against today: a bundle that has come close to its expiry is refused.
    stack.clock.advance(timedelta(days=180).total_seconds())
    late = await stack.http.post(f"/internal/v1/bundles/{ref}/uses", json=use)
    assert late.status_code == 422 and late.json()["code"] == "expiring_soon"
    assert {r[0] for r in stack.rows()} == {ref, second.json()["bundle_ref"]}

    gone = await stack.http.post("/internal/v1/bundles/bnd_nothere/uses", json=use)
    assert gone.status_code == 404 and gone.json()["code"] == "bundle_not_found"
