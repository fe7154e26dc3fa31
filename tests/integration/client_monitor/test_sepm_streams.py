"""The client-monitor's SEPM clients run on asyncio's own sockets (adapters/sepm_streams.py).

The connector's whole behaviour against the twin over real HTTPS (paging, tokens, 429s, 5xx
retries, TLS trust and refusal, a refused connection, a service restart closing kept-alive
connections) is the connector suite's own tests, collected here once more with every client
opened as the service opens it; and one read timeout, which that suite does not cover.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from certrotate_shared.sepm.api import SepmError
from client_monitor.adapters import sepm_streams
from client_monitor.bootstrap import SEPM_CLIENT_OPTIONS
from tests.integration.sepm import test_connector_against_twin as connector_suite
from tests.integration.sepm.conftest import TwinControl, started_twins

pytestmark = pytest.mark.integration


class ServiceClients(TwinControl):
    """The suite's twin, whose clients are opened with the client-monitor's options."""

    def client(self, site: str = "site-a", **options: Any) -> Any:
        return super().client(site, **{**SEPM_CLIENT_OPTIONS, **options})


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every connection the asyncio backend opens: proof the sockets are the service's."""
    opened: list[tuple[str, int]] = []
    connect = sepm_streams.AsyncioBackend.connect_tcp

    async def counted(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opened.append((host, port))
        return await connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(sepm_streams.AsyncioBackend, "connect_tcp", counted)
    return opened


@pytest.fixture
async def twin_factory(connections: list[tuple[str, int]]) -> AsyncIterator[Any]:
    async for start in started_twins(ServiceClients):
        yield start


@pytest.fixture
async def twin(twin_factory: Any) -> ServiceClients:
    control: ServiceClients = await twin_factory()
    return control


@pytest.fixture(autouse=True)
def _went_through_asyncio_sockets(
    request: pytest.FixtureRequest, connections: list[tuple[str, int]]
) -> Any:
    yield
    if request.node.name != "test_a_stopped_api_service_is_reported_as_unreachable":
        assert connections, "no connection went through the asyncio backend"


test_a_full_scan_pages_every_client_exactly_once = (
    connector_suite.test_a_full_scan_pages_every_client_exactly_once
)
test_an_incremental_scan_returns_only_clients_updated_since = (
    connector_suite.test_an_incremental_scan_returns_only_clients_updated_since
)
test_token_expired_mid_scan_is_renewed_and_no_page_is_lost_or_repeated = (
    connector_suite.test_token_expired_mid_scan_is_renewed_and_no_page_is_lost_or_repeated
)
test_short_lived_tokens_are_renewed_during_a_long_scan = (
    connector_suite.test_short_lived_tokens_are_renewed_during_a_long_scan
)
test_a_429_storm_is_waited_out_honouring_retry_after = (
    connector_suite.test_a_429_storm_is_waited_out_honouring_retry_after
)
test_5xx_on_reads_is_retried_until_sepm_recovers = (
    connector_suite.test_5xx_on_reads_is_retried_until_sepm_recovers
)
test_a_failed_replicatenow_is_reported_once_not_repeated = (
    connector_suite.test_a_failed_replicatenow_is_reported_once_not_repeated
)
test_a_refused_account_is_a_clear_non_retryable_error = (
    connector_suite.test_a_refused_account_is_a_clear_non_retryable_error
)
test_tls_trusts_a_pinned_server_certificate_and_rejects_others = (
    connector_suite.test_tls_trusts_a_pinned_server_certificate_and_rejects_others
)
test_a_trust_set_with_old_and_new_certificate_survives_the_swap = (
    connector_suite.test_a_trust_set_with_old_and_new_certificate_survives_the_swap
)
test_a_stopped_api_service_is_reported_as_unreachable = (
    connector_suite.test_a_stopped_api_service_is_reported_as_unreachable
)


async def test_a_page_that_does_not_come_in_time_is_a_read_timeout_and_retried(twin):
    await twin.fault(kind="timeout", path="/computers", delay_s=2.0, count=1)
    async with twin.client(read_timeout=0.5) as api:
        seen = await connector_suite.scan(api, page_size=1000)
    assert len(seen) == 3000  # the GET was sent again after the timeout
    assert await twin.faults() == []
    async with twin.client(read_timeout=0.5) as api:
        await twin.fault(kind="timeout", path="/computers", delay_s=2.0, count=99)
        with pytest.raises(SepmError, match=r"did not answer within 0.5 s"):
            await connector_suite.scan(api, page_size=1000)
