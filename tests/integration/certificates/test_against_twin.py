"""The certificates service over real Kafka and PostgreSQL against a real twin: the SEPM REST
API over HTTPS, the host agent, and real TLS handshakes on every port of each server."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from certificates.bootstrap import build_runtime
from certificates.settings import Settings
from certrotate_shared import site_directory
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.certificates import (
    CheckCertificateVerification,
    GroupVerification,
    RollbackServerCertificate,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.sepm.answers import locations
from certrotate_shared.tlsprobe import served_fingerprints
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import OutgoingRecord
from certrotate_shared.transport.kafka import KafkaTransport
from certrotate_shared.vault import Vault
from sepm_twin import Twin
from tests.integration.certificates.conftest import TOKEN, EventProbe, api_client, twin_site
from tests.support.rogue import Rogue

pytestmark = pytest.mark.integration

ADMIN = {"username": "admin", "password": "admin", "domain": ""}
SCENARIO: dict[str, Any] = {
    "seed": 3,
    "clock": {"speed": 0},
    "sites": [
        {
            "name": "site-a",
            "version": "14.3.9000",
            "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
            "groups": [
                {"name": "My Company\\Default", "clients": 20, "locations": ["Default", "Remote"]},
                {"name": "My Company\\Laptops", "clients": 10},
                # Inherits Laptops' policy: lists Laptops' locations, and the twin refuses a
                # PATCH through it (400 naming the owner), as a real SEPM may.
                {"name": "My Company\\Laptops\\Kiosks", "clients": 3, "inherits": True},
                {"name": "My Company\\Lab", "clients": 5, "secure_communications": False},
                # Another domain: the API account logs on to Default and must reach it too.
                {"name": "My Company\\Paris", "domain": "EMEA", "clients": 7},
            ],
        }
    ],
}


class Stack:
    def __init__(
        self,
        twin: Twin,
        runtime: ServiceRuntime,
        probe: EventProbe,
        http: httpx.AsyncClient,
        vault: Vault,
    ) -> None:
        self.twin, self.runtime, self.probe, self.twin_http = twin, runtime, probe, http
        self.vault = vault
        self.site: SiteTarget = twin_site(twin.topology(), "site-a")
        self.api = api_client(runtime)
        self._token: str | None = None

    def server(self, name: str) -> Any:
        return self.site.server(name)

    async def publish(self, site: SiteTarget, *, revision: int) -> None:
        """What the orchestrator does for a site of its inventory."""
        await site_directory.publish(self.vault, site, revision=revision)

    async def sepm(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            auth = await self.twin_http.post(
                "/sites/site-a/sepm/api/v1/identity/authenticate", json=ADMIN
            )
            self._token = auth.json()["token"]
        response = await self.twin_http.request(
            method,
            f"/sites/site-a/sepm/api/v1{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            **kwargs,
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def verification_state(self) -> tuple[dict[str, str], dict[tuple[str, str], bool]]:
        """Group id -> serial, and (group, location) -> secure_communications, as SEPM says,
        over every domain."""
        groups = []
        for domain in await self.sepm("GET", "/domains"):
            params = {"pageSize": 100, "domain": domain["id"]}
            groups += (await self.sepm("GET", "/groups", params=params))["content"]
        assert len({g["domain"]["id"] for g in groups}) == 2
        values = {}
        for group in groups:
            listed = await self.sepm(
                "GET",
                f"/groups/{group['id']}/locations",
                params={"hasName": "true", "domainId": group["domain"]["id"]},
            )
            for location in locations(listed, "GET /groups/{id}/locations"):
                settings = await self.sepm(
                    "GET", f"/groups/{group['id']}/locations/{location.id}/settings"
                )
                values[(group["id"], location.id)] = settings["configuration"]["general_settings"][
                    "security_settings"
                ]["secure_communications"]
        return {g["id"]: g["policySerialNumber"] for g in groups}, values

    async def new_bundle(self, server: str, fmt: str = "pkcs12") -> tuple[str, str]:
        """A new certificate from the twin CA, uploaded through pre-flight: (ref, fingerprint)."""
        hostnames = self.server(server).hostnames
        issued = await self.twin_http.post(
            "/twin/v1/ca/issue", json={"hostnames": hostnames, "format": fmt, "password": "pw-1234"}
        )
        install = issued.json()["install"]
        body = {"site": "site-a", "hostnames": hostnames, "min_validity_days": 30, **install}
        stored = await self.api.post("/internal/v1/bundles", json=body)
        assert stored.status_code == 201, stored.text
        return stored.json()["bundle_ref"], stored.json()["fingerprint_sha256"]

    async def installs(self, server: str) -> list[dict[str, Any]]:
        """Certificate installs the twin really performed (replays excluded)."""
        log = (await self.twin_http.get("/twin/v1/operations")).json()
        return [
            e
            for e in log
            # One console-like install, or the record write ending a per-store swap.
            if e["operation"] in ("certificate.install", "certificate.record")
            and e["target"] == server
            and not e["replay"]
        ]

    async def fault(self, **spec: Any) -> None:
        response = await self.twin_http.post("/twin/v1/faults", json=spec)
        assert response.status_code == 201, response.text

    def update(
        self, saga: str, server: str, ref: str, fp: str, attempt: int = 1
    ) -> UpdateServerCertificate:
        return UpdateServerCertificate(
            idempotency_key=f"{saga}:update:{server}:{attempt}",
            site=self.site,
            server=self.server(server),
            bundle_ref=ref,
            expected_fingerprint=fp,
        )


@pytest.fixture
async def stack(
    pg_url: str, kafka_bootstrap: str, topic_prefix: str, master_key: str, pg_schemas: list[str]
) -> AsyncIterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    schemas = {name: f"{name}_{suffix}" for name in ("certs", "probe", "vault")}
    pg_schemas.extend(schemas.values())
    twin = await Twin.start(SCENARIO)
    vault = Vault(pg_url, base64.urlsafe_b64decode(master_key), schema=schemas["vault"])
    await vault.start()
    await vault.put("sepm/site-a", "sepm", ADMIN)
    await site_directory.publish(vault, twin_site(twin.topology(), "site-a"), revision=1)
    common: dict[str, Any] = {
        "database_url": pg_url,
        "transport": "kafka",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "master_key": master_key,
    }
    settings = Settings(
        **common,
        database_schema=schemas["certs"],
        internal_token=TOKEN,
        verify_timeout_s=10,
        verify_interval_s=0.2,
        work_poll_s=0.2,
    )
    runtime = build_runtime(settings, vault=vault)
    await runtime.start(serve_http=False)
    probe = EventProbe(**common, database_schema=schemas["probe"])
    await probe.runtime.start()
    http = httpx.AsyncClient(base_url=twin.base_url, timeout=30)
    s = Stack(twin, runtime, probe, http, vault)
    try:
        yield s
    finally:
        await s.api.aclose()
        await http.aclose()
        await probe.runtime.stop()
        await runtime.stop()
        await vault.stop()
        await twin.stop()


async def test_disable_and_restore_verification_over_every_group_and_location(stack: Stack) -> None:
    serials_before, before = await stack.verification_state()
    saga = str(uuid.uuid4())
    disable = SetCertificateVerification(
        idempotency_key=f"{saga}:2:1", site=stack.site, mode="disable"
    )
    await stack.probe.emit(disable, saga)
    event = (await stack.probe.wait_for("CertificateVerificationSet")).payload
    serials_off, after = await stack.verification_state()
    assert set(after.values()) == {False}
    groups = {g["group_id"]: g for g in event["groups"]}
    assert set(groups) == set(serials_before)
    kiosks = next(g for g in event["groups"] if g["full_path_name"].endswith("Kiosks"))
    laptops = next(g for g in event["groups"] if g["full_path_name"].endswith("Laptops"))
    for (group_id, location_id), value in before.items():
        if group_id != kiosks["group_id"]:
            assert groups[group_id]["original_values"][location_id] is value
        assert groups[group_id]["target_serial"] == serials_off[group_id]
    # Changed through its owner only; its clients must reach the owner's new serial.
    assert kiosks["original_values"] == {}
    assert kiosks["target_serial"] == laptops["target_serial"]
    lab = next(g for g in event["groups"] if g["full_path_name"].endswith("Lab"))
    changed = {g for g in serials_before if serials_before[g] != serials_off[g]}
    assert changed == set(serials_before) - {lab["group_id"]}  # the Lab was off already

    restore = SetCertificateVerification(
        idempotency_key=f"{saga}:5:1", site=stack.site, mode="restore"
    )
    await stack.probe.emit(restore, saga)
    restored = (
        await stack.probe.wait_for(
            "CertificateVerificationSet", where=lambda e: e.payload["mode"] == "restore"
        )
    ).payload
    serials_on, now = await stack.verification_state()
    assert now == before
    assert {g["group_id"]: g["target_serial"] for g in restored["groups"]} == serials_on
    assert all(serials_on[g] != serials_off[g] for g in changed)


async def test_restore_puts_back_the_orchestrators_originals_and_the_gate_sees_a_re_enable(
    stack: Stack,
) -> None:
    _, before = await stack.verification_state()
    saga = str(uuid.uuid4())
    disable = SetCertificateVerification(
        idempotency_key=f"{saga}:2:1", site=stack.site, mode="disable"
    )
    await stack.probe.emit(disable, saga)
    disabled = (await stack.probe.wait_for("CertificateVerificationSet")).payload
    check = CheckCertificateVerification(idempotency_key=f"{saga}:gate:1", site=stack.site)
    await stack.probe.emit(check, saga)
    clean = (await stack.probe.wait_for("CertificateVerificationChecked")).payload
    owned_locations = {location_id for _, location_id in before}  # inheriting ones list these
    assert clean["enabled"] == [] and clean["locations_checked"] == len(owned_locations)

    # Another administrator turns verification back on in the other domain during the wait.
    paris = next(g for g in disabled["groups"] if g["full_path_name"].endswith("Paris"))
    [location_id] = paris["original_values"]
    await stack.sepm(
        "PATCH",
        f"/groups/{paris['group_id']}/locations/{location_id}/settings",
        json={
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": True}}
            }
        },
    )
    check = CheckCertificateVerification(idempotency_key=f"{saga}:gate:2", site=stack.site)
    await stack.probe.emit(check, saga)
    seen = (
        await stack.probe.wait_for(
            "CertificateVerificationChecked", where=lambda e: e.payload["enabled"] != []
        )
    ).payload
    assert [(e["group_id"], e["location_id"]) for e in seen["enabled"]] == [
        (paris["group_id"], location_id)
    ]

    originals = [GroupVerification.model_validate(g) for g in disabled["groups"]]
    restore = SetCertificateVerification(
        idempotency_key=f"{saga}:5:1", site=stack.site, mode="restore", originals=originals
    )
    await stack.probe.emit(restore, saga)
    await stack.probe.wait_for(
        "CertificateVerificationSet", where=lambda e: e.payload["mode"] == "restore"
    )
    _, now = await stack.verification_state()
    assert now == before


async def test_restore_with_nothing_recorded_fails_instead_of_completing(stack: Stack) -> None:
    saga = str(uuid.uuid4())
    restore = SetCertificateVerification(
        idempotency_key=f"{saga}:5:1", site=stack.site, mode="restore", originals=[]
    )
    await stack.probe.emit(restore, saga)
    failed = (await stack.probe.wait_for("CertificateVerificationFailed")).payload
    assert failed["mode"] == "restore" and failed["retryable"] is False
    assert "nothing to restore" in failed["reason"]


async def test_update_serves_the_new_certificate_on_every_port_and_installs_once(
    stack: Stack, kafka_bootstrap: str, topic_prefix: str
) -> None:
    ref, fingerprint = await stack.new_bundle("sepm-a1", fmt="jks")
    old = await served_fingerprints(stack.server("sepm-a1"))
    saga = str(uuid.uuid4())
    command = stack.update(saga, "sepm-a1", ref, fingerprint)
    envelope = Envelope.wrap(command, saga_id=saga)
    resent = Envelope.wrap(command, saga_id=saga)  # the orchestrator sends the step again
    record = OutgoingRecord(commands_topic("certificates", topic_prefix), saga, envelope.to_bytes())
    producer = KafkaTransport(kafka_bootstrap)
    await producer.start()
    try:
        await producer.publish([record, record])  # and Kafka delivers it twice
        updated = (await stack.probe.wait_for("ServerCertificateUpdated", timeout=60)).payload
        await producer.publish([OutgoingRecord(record.topic, saga, resent.to_bytes())])
        await asyncio.sleep(1.0)  # room for a wrong second install to happen
    finally:
        await producer.stop()
    assert updated["fingerprint"] == fingerprint
    assert updated["ports_verified"] == {
        "8443": fingerprint,
        "8446": fingerprint,
        "443": fingerprint,
        "8445": fingerprint,
    }
    assert updated["previous_fingerprint"] == old["443"]
    assert await served_fingerprints(stack.server("sepm-a1")) == updated["ports_verified"]
    assert len(await stack.installs("sepm-a1")) == 1
    # The other server of the site was not touched.
    assert set((await served_fingerprints(stack.server("sepm-a2"))).values()) != {fingerprint}

    # A later attempt of the same step finds the certificate in place and does nothing.
    await stack.probe.emit(stack.update(saga, "sepm-a1", ref, fingerprint, attempt=2), saga)
    await stack.probe.wait_for(
        "ServerCertificateUpdated",
        where=lambda e: e.causation_id not in (str(envelope.message_id), str(resent.message_id)),
    )
    assert len(await stack.installs("sepm-a1")) == 1


async def test_an_install_failure_is_reported_and_nothing_changes(stack: Stack) -> None:
    ref, fingerprint = await stack.new_bundle("sepm-a2")
    old = await served_fingerprints(stack.server("sepm-a2"))
    await stack.fault(
        kind="install_failure", server="sepm-a2", message="Failed to update the keystore"
    )
    saga = str(uuid.uuid4())
    await stack.probe.emit(stack.update(saga, "sepm-a2", ref, fingerprint), saga)
    failed = (await stack.probe.wait_for("ServerCertificateUpdateFailed", timeout=60)).payload
    assert failed["stage"] == "install"
    assert "Failed to update the keystore" in failed["reason"]
    assert failed["backup_ref"]
    assert await served_fingerprints(stack.server("sepm-a2")) == old


async def test_a_service_that_fails_to_start_then_rollback_restores_the_old_certificate(
    stack: Stack,
) -> None:
    ref, fingerprint = await stack.new_bundle("sepm-a1")
    old = await served_fingerprints(stack.server("sepm-a1"))
    await stack.fault(kind="service_start_failure", server="sepm-a1", service="semwebsrv", count=1)
    saga = str(uuid.uuid4())
    await stack.probe.emit(stack.update(saga, "sepm-a1", ref, fingerprint), saga)
    failed = (await stack.probe.wait_for("ServerCertificateUpdateFailed", timeout=60)).payload
    assert failed["stage"] == "restart" and "semwebsrv" in failed["reason"]

    rollback = RollbackServerCertificate(
        idempotency_key=f"{saga}:rollback:sepm-a1:1",
        site=stack.site,
        server=stack.server("sepm-a1"),
        backup_ref=failed["backup_ref"],
        expected_fingerprint=old["443"],
    )
    await stack.probe.emit(rollback, saga)
    rolled = (await stack.probe.wait_for("ServerCertificateRolledBack", timeout=60)).payload
    assert rolled["fingerprint"] == old["443"]
    assert await served_fingerprints(stack.server("sepm-a1")) == old


async def test_rollback_after_a_successful_update(stack: Stack) -> None:
    ref, fingerprint = await stack.new_bundle("sepm-a2", fmt="pem")
    old = await served_fingerprints(stack.server("sepm-a2"))
    saga = str(uuid.uuid4())
    await stack.probe.emit(stack.update(saga, "sepm-a2", ref, fingerprint), saga)
    updated = (await stack.probe.wait_for("ServerCertificateUpdated", timeout=60)).payload
    assert set((await served_fingerprints(stack.server("sepm-a2"))).values()) == {fingerprint}
    rollback = RollbackServerCertificate(
        idempotency_key=f"{saga}:rollback:sepm-a2:1",
        site=stack.site,
        server=stack.server("sepm-a2"),
        backup_ref=updated["backup_ref"],
        expected_fingerprint=updated["previous_fingerprint"],
    )
    await stack.probe.emit(rollback, saga)
    await stack.probe.wait_for("ServerCertificateRolledBack", timeout=60)
    assert await served_fingerprints(stack.server("sepm-a2")) == old


async def test_a_command_naming_other_endpoints_reaches_the_inventorys_site_only(
    stack: Stack, tmp_path: Path
) -> None:
    """The API URL, trust set, host agent and server ports of a forged command are not
    followed: the SEPM password and the keystore go to the published site (the twin), and
    the attacker's relaying listeners hear nothing."""
    site = stack.site
    ca = site.trusted_certificates_pem[0]
    api = httpx.URL(site.api_url)
    sepm_rogue = await Rogue.start(
        f"https://{api.host}:{api.port}", tls_dir=tmp_path, upstream_ca_pem=ca
    )
    agent_rogue = await Rogue.start(str(site.host_ops.endpoint))
    try:
        await stack.publish(site, revision=5)
        forged = site.model_copy(
            update={
                "api_url": sepm_rogue.steer(site.api_url),
                "trusted_certificates_pem": [ca, sepm_rogue.ca_pem],
                "host_ops": site.host_ops.model_copy(update={"endpoint": agent_rogue.url}),
                "revision": 5,
            }
        )
        rogue_port = int(httpx.URL(sepm_rogue.url).port or 0)
        server = stack.server("sepm-a1").model_copy(
            update={"ports": dict.fromkeys(("8443", "8446", "443"), rogue_port)}
        )
        ref, fingerprint = await stack.new_bundle("sepm-a1", fmt="jks")
        saga = str(uuid.uuid4())
        await stack.probe.emit(
            SetCertificateVerification(idempotency_key=f"{saga}:2:1", site=forged, mode="disable"),
            saga,
        )
        disabled = await stack.probe.wait_for("CertificateVerificationSet", timeout=60)
        assert disabled.payload["groups"], disabled.payload
        update = stack.update(saga, "sepm-a1", ref, fingerprint)
        await stack.probe.emit(update.model_copy(update={"site": forged, "server": server}), saga)
        updated = (await stack.probe.wait_for("ServerCertificateUpdated", timeout=60)).payload
        assert set(updated["ports_verified"].values()) == {fingerprint}
        assert len(await stack.installs("sepm-a1")) == 1
        assert sepm_rogue.heard == []
        assert agent_rogue.heard == []
    finally:
        await sepm_rogue.stop()
        await agent_rogue.stop()
