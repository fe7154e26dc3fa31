"""Internal HTTP APIs (issue 11 item 7): the internal token on every route of the replication and
client-monitor APIs, TLS and mTLS on any service's listener, and the orchestrator calling the
client-monitor with the token over TLS. Real PostgreSQL and Kafka, real sockets."""

from __future__ import annotations

import functools
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.settings import SettingsError, load_settings
from tests.support.pki import TestCA

pytestmark = pytest.mark.integration

TOKEN = "internal-token-for-tests-0123456789"
HEADER = "X-Certrotate-Internal-Token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A server CA and certificate for 127.0.0.1, and a client CA with one client certificate."""
    where = tmp_path_factory.mktemp("pki")
    server_ca, client_ca = TestCA.root("Service CA", slot=1), TestCA.root("Client CA", slot=3)
    server = server_ca.issue(["127.0.0.1", "localhost"], key_slot=10)
    client = client_ca.issue(["orchestrator"], common_name="orchestrator", key_slot=11)
    stranger = TestCA.root("Other CA", slot=4).issue(["orchestrator"], key_slot=12)
    files = {
        "server_ca": server_ca.pem,
        "server_cert": server.pem_bundle(),
        "server_key": server.key_pem(),
        "client_ca": client_ca.pem,
        "client_cert": client.cert_pem(),
        "client_key": client.key_pem(),
        "stranger_cert": stranger.cert_pem(),
        "stranger_key": stranger.key_pem(),
    }
    paths = {}
    for name, data in files.items():
        (where / f"{name}.pem").write_bytes(data)
        paths[name] = str(where / f"{name}.pem")
    return paths


@pytest.fixture
async def serve(
    pg_url: str, kafka_bootstrap: str, topic_prefix: str, master_key: str, pg_schemas: list[str]
) -> AsyncIterator[Callable[..., Any]]:
    started: list[ServiceRuntime] = []

    async def start(service: str, **settings: Any) -> ServiceRuntime:
        schema = f"{service.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        pg_schemas.append(schema)
        common = {
            "database_url": pg_url,
            "database_schema": schema,
            "transport": "kafka",
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "master_key": master_key,
            "internal_token": TOKEN,
            "http_host": "127.0.0.1",
            "http_port": 0,
        }
        runtime = _build(service, **(common | settings))
        await runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()


def _build(service: str, **settings: Any) -> ServiceRuntime:
    if service == "replication":
        from replication.bootstrap import build_runtime as replication_runtime
        from replication.settings import Settings as ReplicationSettings

        return replication_runtime(load_settings(ReplicationSettings, **settings))
    from client_monitor.bootstrap import build_runtime as monitor_runtime
    from client_monitor.settings import Settings as MonitorSettings

    return monitor_runtime(load_settings(MonitorSettings, **settings))


# One read route of each internal API (every route sits behind the same middleware).
ROUTES = {
    "replication": ("/v1/broken-partnerships", 200),
    "client-monitor": ("/v1/watches/no-such-watch/clients?status=at_risk", 404),
}


@pytest.mark.parametrize("service", sorted(ROUTES))
async def test_every_internal_api_refuses_a_request_without_the_internal_token(
    serve, service: str
) -> None:
    runtime = await serve(service)
    path, status = ROUTES[service]
    async with httpx.AsyncClient(base_url=runtime.http_url or "") as client:
        missing = await client.get(path)
        wrong = await client.get(path, headers={HEADER: "x" * len(TOKEN)})
        right = await client.get(path, headers={HEADER: TOKEN})
        docs = await client.get("/openapi.json")
        health = await client.get("/healthz")

        async def five_mib():  # chunked, no Content-Length: must be refused before it is read
            for _ in range(80):
                yield b"x" * 65536

        body = await client.post(path.split("?")[0], content=five_mib())

    for refused in (missing, wrong, docs, body):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "internal_token_required"
        assert TOKEN not in refused.text
    assert right.status_code == status
    assert health.status_code == 200


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_an_internal_api_does_not_start_without_a_real_token(service: str, master_key) -> None:
    for token in ("", "changeme", "short"):
        with pytest.raises(SettingsError) as caught:
            _build(service, master_key=master_key, internal_token=token)
        prefix = f"CERTROTATE_{service.upper().replace('-', '_')}_INTERNAL_TOKEN"
        assert prefix in str(caught.value)


async def test_a_listener_serves_tls_and_with_a_client_ca_requires_a_client_certificate(
    serve, pki: dict[str, str]
) -> None:
    runtime = await serve(
        "client-monitor",
        http_tls_cert_file=pki["server_cert"],
        http_tls_key_file=pki["server_key"],
        http_tls_client_ca_file=pki["client_ca"],
    )
    url = runtime.http_url or ""
    assert url.startswith("https://127.0.0.1:")

    def context(cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=pki["server_ca"])
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    async with httpx.AsyncClient(verify=context(pki["client_cert"], pki["client_key"])) as ok:
        assert (await ok.get(f"{url}/healthz")).status_code == 200
    for refused in (
        context(),  # no client certificate
        context(pki["stranger_cert"], pki["stranger_key"]),  # one the client CA did not issue
    ):
        async with httpx.AsyncClient(verify=refused) as client:
            with pytest.raises(httpx.TransportError):
                (await client.get(f"{url}/healthz")).raise_for_status()
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.TransportError):
            await plain.get(url.replace("https:", "http:") + "/healthz")


def test_tls_settings_that_cannot_work_are_refused_naming_the_variables(
    pki: dict[str, str], master_key: str, tmp_path: Path
) -> None:
    from replication.settings import Settings

    load = functools.partial(load_settings, Settings, master_key=master_key, internal_token=TOKEN)
    cases = {
        "CERTROTATE_REPLICATION_HTTP_TLS_KEY_FILE": {"http_tls_cert_file": pki["server_cert"]},
        "CERTROTATE_REPLICATION_HTTP_TLS_CERT_FILE": {"http_tls_client_ca_file": pki["client_ca"]},
        "CERTROTATE_REPLICATION_INTERNAL_TLS_CA_FILE": {
            "internal_tls_ca_file": str(tmp_path / "missing.pem")
        },
    }
    for variable, settings in cases.items():
        with pytest.raises(SettingsError) as caught:
            load(**settings)
        assert variable in str(caught.value)


async def test_the_orchestrator_asks_the_client_monitor_with_the_token_over_mtls(
    serve, pki: dict[str, str], master_key: str
) -> None:
    from orchestrator.adapters.clients import UpstreamUnavailableError
    from orchestrator.bootstrap import build_runtime
    from orchestrator.settings import Settings as OrchestratorSettings

    monitor = await serve(
        "client-monitor",
        http_tls_cert_file=pki["server_cert"],
        http_tls_key_file=pki["server_key"],
        http_tls_client_ca_file=pki["client_ca"],
    )
    settings = load_settings(
        OrchestratorSettings,
        master_key=master_key,
        internal_token=TOKEN,
        admin_token="admin-token-for-tests-0123456789",
        client_monitor_url=monitor.http_url,
        internal_tls_ca_file=pki["server_ca"],
        internal_tls_client_cert_file=pki["client_cert"],
        internal_tls_client_key_file=pki["client_key"],
    )
    # The clients the orchestrator's bootstrap built, as its API and handlers hold them.
    runtime = build_runtime(settings)
    deps = runtime.spec.api(runtime).state.deps  # type: ignore[misc]
    # Through TLS, the client certificate and the token, the client-monitor itself answers.
    with pytest.raises(UpstreamUnavailableError, match="knows no watch 'no-such-watch'"):
        await deps.client_monitor.accept_list("no-such-watch")
    await deps.client_monitor._http.aclose()
    await deps.certificates._http.aclose()
