"""Host operations over the twin's host agent, and what they do to the real TLS ports."""

from __future__ import annotations

import asyncio
import base64

import pytest

from sepm_twin import Twin
from tests.integration.twin.conftest import TwinDriver, presented_fingerprint, two_site_scenario

pytestmark = pytest.mark.integration


async def openssl_fingerprint(port: int) -> str:
    """What `openssl s_client` sees, as an operator would check it."""
    s_client = await asyncio.create_subprocess_exec(
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    pem, _ = await s_client.communicate()
    x509 = await asyncio.create_subprocess_exec(
        "openssl",
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await x509.communicate(pem)
    return out.decode().strip().split("=", 1)[1].replace(":", "").lower()


async def test_the_new_certificate_is_served_only_after_the_restart(driver: TwinDriver) -> None:
    server = driver.server("sepm-a1")
    old_fp = server["served_fingerprint_sha256"]
    assert await openssl_fingerprint(server["ports"]["443"]) == old_fp

    issued = await driver.issue(server["hostnames"], fmt="jks")
    install = await driver.host("/servers/sepm-a1/certificate/install", issued["install"])
    assert install.status_code == 200, install.text
    assert install.json()["installed_fingerprint_sha256"] == issued["fingerprint_sha256"]
    # Installed but not yet loaded: every port still presents the old certificate.
    for port in ("8443", "8446", "443"):
        assert await presented_fingerprint(server["ports"][port]) == old_fp

    await driver.host("/servers/sepm-a1/services/semwebsrv/restart")
    assert await openssl_fingerprint(server["ports"]["443"]) == issued["fingerprint_sha256"]
    # On 14.x the REST API port belongs to semapisrv, which has not reloaded yet.
    assert await presented_fingerprint(server["ports"]["8446"]) == old_fp
    await driver.host("/servers/sepm-a1/services/semapisrv/restart")
    assert await presented_fingerprint(server["ports"]["8446"]) == issued["fingerprint_sha256"]
    assert driver.server("sepm-a1")["served_fingerprint_sha256"] == issued["fingerprint_sha256"]


async def test_backup_and_restore_roll_back_exactly(driver: TwinDriver) -> None:
    old_fp = driver.server("sepm-a2")["served_fingerprint_sha256"]
    backup = (await driver.host("/servers/sepm-a2/certificate/backup")).json()
    assert backup["fingerprint_sha256"] == old_fp
    await driver.swap_certificate("sepm-a2")
    assert driver.server("sepm-a2")["served_fingerprint_sha256"] != old_fp
    restored = await driver.host(
        "/servers/sepm-a2/certificate/restore", {"backup_id": backup["backup_id"]}
    )
    assert restored.status_code == 200, restored.text
    await driver.host("/servers/sepm-a2/restart")
    for port in ("8443", "8446", "443"):
        assert await presented_fingerprint(driver.server("sepm-a2")["ports"][port]) == old_fp


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda body: body | {"password": "not-it"},
            "Keystore was tampered with, or password was incorrect",
        ),
        (
            lambda body: body | {"data_b64": base64.b64encode(b"corrupt").decode()},
            "Invalid keystore file",
        ),
    ],
)
async def test_sepm_refuses_a_bad_keystore_and_keeps_the_old_certificate(
    driver: TwinDriver, mutate: object, message: str
) -> None:
    issued = await driver.issue(["sepm-a1.twin.example"], fmt="pkcs12")
    body = mutate(issued["install"])  # type: ignore[operator]
    refused = await driver.host("/servers/sepm-a1/certificate/install", body)
    assert refused.status_code == 422
    assert refused.json()["errorMessage"] == message
    server = driver.server("sepm-a1")
    assert server["installed_fingerprint_sha256"] == server["served_fingerprint_sha256"]


async def test_a_mismatched_private_key_is_refused(driver: TwinDriver) -> None:
    one = await driver.issue(["a.example"], fmt="pem")
    two = await driver.issue(["b.example"], fmt="pem")
    body = one["install"] | {"key_b64": two["install"]["key_b64"]}
    refused = await driver.host("/servers/sepm-a1/certificate/install", body)
    assert refused.status_code == 422
    assert refused.json()["errorMessage"] == "The private key does not match the certificate"


async def test_a_repeated_idempotency_key_replays_without_acting_and_the_log_has_no_secrets(
    driver: TwinDriver,
) -> None:
    issued = await driver.issue(["sepm-a1.twin.example"], fmt="pkcs12")
    first = await driver.host("/servers/sepm-a1/certificate/backup", key="saga-1:4:1")
    again = await driver.host("/servers/sepm-a1/certificate/backup", key="saga-1:4:1")
    assert again.json() == first.json()
    assert len(driver.server("sepm-a1")["backups"]) == 1
    await driver.host("/servers/sepm-a1/certificate/install", issued["install"], key="saga-1:4:2")
    missing = await driver.http.post("/twin/v1/servers/sepm-a1/certificate/backup")
    assert missing.status_code == 400

    log = (await driver.http.get("/twin/v1/operations")).json()
    assert [(e["operation"], e["replay"]) for e in log] == [
        ("certificate.backup", False),
        ("certificate.backup", True),
        ("certificate.install", False),
    ]
    assert log[2]["params"] == {
        "format": "pkcs12",
        "fingerprint_sha256": issued["fingerprint_sha256"],
    }
    text = str(log)
    assert issued["install"]["password"] not in text.replace("'password'", "")
    assert issued["install"]["data_b64"][:40] not in text


async def test_a_stopped_webserver_refuses_connections_on_apaches_ports(
    driver: TwinDriver,
) -> None:
    fault = await driver.http.post(
        "/twin/v1/faults",
        json={"kind": "service_start_failure", "server": "sepm-a1", "service": "semwebsrv"},
    )
    assert fault.status_code == 201
    failed = await driver.host("/servers/sepm-a1/services/semwebsrv/restart")
    assert failed.status_code == 500
    assert "failed to start" in failed.json()["errorMessage"]
    server = driver.server("sepm-a1")
    assert server["services"]["semwebsrv"] == "stopped"
    for port in ("443", "8445", "8014"):
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server["ports"][port])
    # Tomcat's ports belong to other services and stay up.
    for port in ("8443", "8446"):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server["ports"][port])
        writer.close()
    await driver.http.delete("/twin/v1/faults")
    recovered = await driver.host("/servers/sepm-a1/services/semwebsrv/restart")
    assert recovered.status_code == 200
    await asyncio.open_connection("127.0.0.1", server["ports"]["443"])


async def test_semapisrv_exists_only_from_14_0() -> None:
    scenario = two_site_scenario()
    scenario["sites"][1]["version"] = "12.1.6"
    twin = await Twin.start(scenario)
    try:
        import httpx

        async with httpx.AsyncClient(base_url=twin.base_url) as http:
            driver = TwinDriver(twin, http)
            assert set(driver.server("sepm-b1")["services"]) == {"semsrv", "semwebsrv"}
            refused = await driver.host("/servers/sepm-b1/services/semapisrv/restart")
            assert refused.status_code == 409
            assert "14.0" in refused.json()["errorMessage"]
            unknown = await driver.host("/servers/sepm-a1/services/nosuchsrv/restart")
            assert unknown.status_code == 404
    finally:
        await twin.stop()


async def test_a_certificate_change_without_breaking_replication_fails_it(
    driver: TwinDriver,
) -> None:
    await driver.swap_certificate("sepm-a1")
    await driver.sepm(
        "site-b",
        "POST",
        "/replication/replicatenow",
        params={"partnerSiteName": "site-a", "content": "false", "logs": "false"},
    )
    await driver.advance(120)
    status = (await driver.sepm("site-b", "GET", "/replication/status")).json()
    assert status["replicationStatus"]["replicationPartnerStatusList"][0]["status_code"] == (
        "FAILED_CONNECT"
    )
