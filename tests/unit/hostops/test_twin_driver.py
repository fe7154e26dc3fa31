"""The twin driver's requests and its reading of the host agent's answers (no network)."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest

from certrotate_shared.hostops import CertificateBundle, HostOperationError, host_operations_for
from certrotate_shared.hostops.twin import TwinHostOperations
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget
from tests.support.factories import site_target

pytestmark = pytest.mark.unit

SERVER = ServerTarget(name="sepm-a1", address="127.0.0.1", version="14.3.9000")
BUNDLE = CertificateBundle(format="pkcs12", data=b"\x30\x82p12", password="hunter2-keystore")


def driver(handler: httpx.MockTransport, endpoint: str = "http://twin:1") -> TwinHostOperations:
    return TwinHostOperations(endpoint, transport=handler)


async def test_install_posts_the_bundle_with_the_key_header() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"server": "sepm-a1"})

    ops = driver(httpx.MockTransport(answer), endpoint="http://twin:1/twin/v1/")
    await ops.install_certificate(SERVER, BUNDLE, key="k-1")
    await ops.close()
    request = seen[0]  # the first of the three writes (the test below has them all)
    assert str(request.url) == "http://twin:1/twin/v1/servers/sepm-a1/certificate/stores/tomcat"
    assert request.headers["Idempotency-Key"] == "k-1:tomcat"
    assert json.loads(request.content) == {
        "format": "pkcs12",
        "data_b64": base64.b64encode(BUNDLE.data).decode(),
        "password": "hunter2-keystore",
    }


async def test_pem_bundles_send_the_key_separately() -> None:
    bodies: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    ops = driver(httpx.MockTransport(answer))
    pem = CertificateBundle(format="pem", data=b"CERT", key=b"KEY", password=None)
    await ops.install_certificate(SERVER, pem, key="k")
    with pytest.raises(HostOperationError, match="needs its private key"):
        await ops.install_certificate(SERVER, CertificateBundle(format="pem", data=b"C"), key="k2")
    await ops.close()
    # The same body to each store and to SEPM's record.
    assert (
        bodies
        == [{"format": "pem", "data_b64": "Q0VSVA==", "key_b64": "S0VZ", "password": None}] * 3
    )


@pytest.mark.parametrize(
    ("status", "body", "retryable", "words"),
    [
        (
            422,
            {"errorCode": "INVALID_KEYSTORE", "errorMessage": "Invalid keystore file"},
            False,
            "Invalid keystore file (INVALID_KEYSTORE, HTTP 422)",
        ),
        (
            500,
            {"errorCode": "INSTALL_FAILED", "errorMessage": "Failed to update"},
            True,
            "Failed to update (INSTALL_FAILED, HTTP 500)",
        ),
        (503, None, True, "Service Unavailable (HTTP 503)"),
        (
            429,
            {"errorCode": "TOO_MANY_REQUESTS", "errorMessage": "Slow down"},
            True,
            "retry after 7 s",
        ),
        (
            404,
            {"errorCode": "NOT_FOUND", "errorMessage": "No management server named 'x'"},
            False,
            "No management server named 'x'",
        ),
    ],
)
async def test_errors_carry_the_hosts_words_and_whether_to_retry(
    status: int,
    body: dict[str, str] | None,
    retryable: bool,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": "7"} if status == 429 else None
        if body is None:
            return httpx.Response(status, text="<html>busy</html>", headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    caplog.set_level(logging.DEBUG)
    ops = driver(httpx.MockTransport(answer))
    with pytest.raises(HostOperationError) as caught:
        await ops.install_certificate(SERVER, BUNDLE, key="k")
    await ops.close()
    assert words in str(caught.value)
    assert str(caught.value).startswith("could not install the certificate on sepm-a1")
    assert caught.value.retryable is retryable
    assert "hunter2-keystore" not in str(caught.value) + caplog.text


async def test_an_unreachable_host_agent_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    ops = driver(httpx.MockTransport(refuse))
    with pytest.raises(HostOperationError, match="is unreachable") as caught:
        await ops.restart_service(SERVER, "semsrv", key="k")
    await ops.close()
    assert caught.value.retryable is True


async def test_backup_reports_the_hosts_backup_id_and_fingerprint() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/twin/v1/servers/sepm-a1/certificate/backup"
        return httpx.Response(200, json={"backup_id": "backup-3", "fingerprint_sha256": "ab" * 32})

    ops = driver(httpx.MockTransport(answer))
    backup = await ops.backup_certificate(SERVER, key="k")
    await ops.close()
    assert (backup.backup_ref, backup.fingerprint) == ("backup-3", "ab" * 32)


async def test_the_factory_refuses_a_twin_site_without_endpoint() -> None:
    site = site_target().model_copy(update={"host_ops": HostOpsTarget(driver="twin")})
    with pytest.raises(HostOperationError, match=r"host_ops\.endpoint is empty"):
        host_operations_for(site, None)
    ops = host_operations_for(site_target(), None)
    assert isinstance(ops, TwinHostOperations)
    await ops.close()


async def test_install_writes_both_stores_and_sepms_record_each_with_its_own_key() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers["Idempotency-Key"], request.content))
        return httpx.Response(200, json={"server": "sepm-a1"})

    ops = driver(httpx.MockTransport(answer))
    await ops.install_certificate(SERVER, BUNDLE, key="k-9")
    await ops.close()
    base = "/twin/v1/servers/sepm-a1/certificate"
    assert [(path, key) for path, key, _ in seen] == [
        (f"{base}/stores/tomcat", "k-9:tomcat"),
        (f"{base}/stores/apache", "k-9:apache"),
        (f"{base}/record", "k-9:record"),
    ]
    assert len({body for _, _, body in seen}) == 1  # the same certificate everywhere


async def test_a_twin_without_per_store_operations_gets_one_install() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if "/stores/" in request.url.path:
            return httpx.Response(404, json={"detail": "Not Found"})  # no such route
        return httpx.Response(200, json={})

    ops = driver(httpx.MockTransport(answer))
    await ops.install_certificate(SERVER, BUNDLE, key="k")
    await ops.close()
    assert seen == [
        "/twin/v1/servers/sepm-a1/certificate/stores/tomcat",
        "/twin/v1/servers/sepm-a1/certificate/install",
    ]


async def test_a_backup_of_stores_that_disagree_is_refused() -> None:
    """A server already half-swapped (one store, or SEPM's record, on another certificate):
    which certificate a rollback must bring back would be a guess."""

    def answer(request: httpx.Request) -> httpx.Response:
        fingerprints = {"tomcat": "aa" * 32, "apache": "aa" * 32, "record": "bb" * 32}
        return httpx.Response(
            200,
            json={
                "backup_id": "b-1",
                "fingerprint_sha256": "aa" * 32,
                "fingerprints": fingerprints,
            },
        )

    ops = driver(httpx.MockTransport(answer))
    with pytest.raises(HostOperationError) as refused:
        await ops.backup_certificate(SERVER, key="k")
    await ops.close()
    assert refused.value.code == "STORES_DISAGREE"
    assert "record" in str(refused.value) and "bb" * 32 in str(refused.value)
