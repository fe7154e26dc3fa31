"""`certrotate bundles upload|list`: the bundle and its password go up once; what comes back
(and is printed) is the id and the certificate's description, never the password."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.unit.cli.test_client_commands import FakeApi, password_file, pkcs12_file, run

pytestmark = pytest.mark.unit
__all__ = ["password_file", "pkcs12_file"]  # fixtures

STORED = {
    "id": "bnd_0123abcd", "format": "pkcs12", "fingerprint_sha256": "ab" * 32,
    "subject": "CN=sepm-a1.corp", "not_after": "2027-01-01T00:00:00Z",
    "sans": ["sepm-a1.corp"], "site": "site-a", "description": "renewal",
    "uploaded_by": "ops", "created_at": "2026-11-30T06:00:00Z",
}  # fmt: skip


def test_upload_sends_the_keystore_and_password_and_prints_the_id(pkcs12_file, password_file):
    api = FakeApi(lambda r: httpx.Response(201, json=STORED))
    result = run(
        api, "bundles", "upload", str(pkcs12_file), "--password-file", str(password_file),
        "--site", "site-a", "--description", "renewal",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "bnd_0123abcd"
    (sent,) = api.bodies()
    assert api.requests[0].url.path == "/v1/bundles"
    assert sent["format"] == "pkcs12" and sent["site"] == "site-a"
    assert base64.b64decode(sent["data_b64"]) == pkcs12_file.read_bytes()
    password = password_file.read_text().splitlines()[0]
    assert sent["password"] == password
    assert password not in result.output


def test_list_shows_ids_and_names_never_secrets():
    api = FakeApi(lambda r: httpx.Response(200, json={"items": [STORED]}))
    table = run(api, "bundles", "list")
    assert table.exit_code == 0, table.output
    assert "bnd_0123abcd" in table.stdout and "sepm-a1.corp" in table.stdout
    as_json = run(api, "bundles", "list", "--json")
    assert json.loads(as_json.stdout)[0]["id"] == "bnd_0123abcd"


def test_rotate_names_an_uploaded_bundle_instead_of_a_file():
    view = {"id": "rot-1", "state": "running"}
    api = FakeApi(lambda r: httpx.Response(201, json=view))
    result = run(api, "rotate", "--site", "site-a", "--bundle-id", "bnd_0123abcd")
    assert result.exit_code == 0, result.output
    (sent,) = api.bodies()
    assert sent["bundle_id"] == "bnd_0123abcd" and "certificate" not in sent
    neither = run(api, "rotate", "--site", "site-a")
    assert neither.exit_code == 2 and "--bundle-id" in neither.output


def test_delete_destroys_the_bundle():
    api = FakeApi(lambda r: httpx.Response(204))
    result = run(api, "bundles", "delete", "bnd_0123abcd")
    assert result.exit_code == 0, result.output
    assert (api.requests[0].method, api.requests[0].url.path) == (
        "DELETE",
        "/v1/bundles/bnd_0123abcd",
    )
