"""The job runner classifies what goes wrong in a long-running command (issue 9 item 2): a
transient error is waited out, an unexpected one ends in the command's typed failure after a
bounded number of attempts instead of being retried silently for ever. Real Kafka + PostgreSQL;
SEPM is an in-memory fake, since the point is what the runner does with its exceptions."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from certificates.bootstrap import build_runtime
from certificates.settings import Settings
from certrotate_shared import site_directory
from certrotate_shared.messages.certificates import SetCertificateVerification
from certrotate_shared.sepm import SepmApi
from certrotate_shared.vault import Vault
from tests.integration.certificates.conftest import TOKEN, EventProbe
from tests.unit.certificates.fakes import FakeSepm, site

pytestmark = pytest.mark.integration


class Sepm:
    """Connects through `failures` in turn (exceptions to raise), then to a working SEPM."""

    def __init__(self, failures: Callable[[int], BaseException | None]) -> None:
        self.failures = failures
        self.connects = 0
        self.fake = FakeSepm({"1A2B": {"L1": True}, "3C4D": {"L2": True}})

    async def __call__(self, _site: Any) -> SepmApi:
        self.connects += 1
        error = self.failures(self.connects)
        if error is not None:
            raise error
        return cast(SepmApi, self.fake)


@pytest.fixture
async def start(
    pg_url: str, kafka_bootstrap: str, topic_prefix: str, master_key: str, pg_schemas: list[str]
) -> AsyncIterator[Callable[[Sepm], Any]]:
    suffix = uuid.uuid4().hex[:8]
    schemas = {name: f"{name}_{suffix}" for name in ("certs", "probe", "vault")}
    pg_schemas.extend(schemas.values())
    vault = Vault(pg_url, base64.urlsafe_b64decode(master_key), schema=schemas["vault"])
    await site_directory.publish(vault, site(), revision=1)  # as the orchestrator does
    common: dict[str, Any] = {
        "database_url": pg_url,
        "transport": "kafka",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "master_key": master_key,
    }
    stopping: list[Any] = []

    async def started(sepm: Sepm) -> EventProbe:
        settings = Settings(
            **common,
            database_schema=schemas["certs"],
            internal_token=TOKEN,
            work_poll_s=0.05,
            work_lease_s=600,  # a retry must not wait for a lease to run out
            max_delivery_attempts=3,
            retry_base_delay_s=0.05,
            transient_retry_max_delay_s=0.2,
        )
        runtime = build_runtime(settings, vault=vault, sepm=sepm)
        await runtime.start(serve_http=False)
        stopping.append(runtime)
        probe = EventProbe(**common, database_schema=schemas["probe"])
        await probe.runtime.start()
        stopping.append(probe.runtime)
        return probe

    yield started
    for runtime in reversed(stopping):
        await runtime.stop()
    await vault.stop()


def _disable(saga: str) -> SetCertificateVerification:
    return SetCertificateVerification(idempotency_key=f"{saga}:2:1", site=site(), mode="disable")


async def test_an_unexpected_error_ends_in_a_typed_failure_after_bounded_attempts(start) -> None:
    sepm = Sepm(lambda n: KeyError("groupId"))
    probe = await start(sepm)
    saga = str(uuid.uuid4())
    sent = await probe.emit(_disable(saga), saga)

    failed = await probe.wait_for("CertificateVerificationFailed", timeout=60)

    assert failed.causation_id == str(sent.message_id)
    assert failed.saga_id == saga
    assert failed.payload["mode"] == "disable"
    assert failed.payload["retryable"] is False
    assert failed.payload["reason"] == "KeyError: 'groupId'"
    assert sepm.connects == 3  # max_delivery_attempts, then it stops trying
    assert probe.of("CertificateVerificationSet") == []


async def test_a_transient_error_is_retried_past_the_attempt_limit_and_then_succeeds(
    start,
) -> None:
    # More refusals than max_delivery_attempts: a database or network outage is waited out.
    sepm = Sepm(lambda n: ConnectionRefusedError(111, "Connection refused") if n <= 5 else None)
    probe = await start(sepm)
    saga = str(uuid.uuid4())
    sent = await probe.emit(_disable(saga), saga)

    done = await probe.wait_for("CertificateVerificationSet", timeout=60)

    assert done.causation_id == str(sent.message_id)
    assert sepm.connects == 6
    assert probe.of("CertificateVerificationFailed") == []
    assert set(sepm.fake.settings["1A2B"].values()) == {False}
