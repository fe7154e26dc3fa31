"""A transition a durable timer causes (here: the propagation wait's fourteen days run out)
stays in the rotation's trace, though no message carries the context to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certrotate_shared import tracing
from certrotate_shared.clock import ManualClock
from tests.integration.orchestrator.harness import api_client, orchestrator
from tests.integration.orchestrator.support import StandInWorker, rotation_body, wait_until
from tests.integration.orchestrator.test_kafka_postgres import (
    register_site,
    stack,
    state_of,
)

pytestmark = pytest.mark.integration

__all__ = ["stack"]  # the fixture


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)


async def test_a_timers_transition_continues_the_rotations_trace(stack, spans) -> None:
    orch_settings, worker_settings = stack
    clock = ManualClock()
    worker = StandInWorker(propagate=False, **worker_settings)
    runtime = orchestrator(orch_settings, clock=clock)
    await worker.runtime.start()
    await runtime.start(serve_http=False)
    try:
        async with api_client(runtime) as client:
            site = await register_site(client)
            created = await client.post("/v1/rotations", json=rotation_body(site))
            rotation_id = created.json()["id"]

            async def waiting() -> bool:
                view = await state_of(client, rotation_id)
                return view["current_step"]["name"] == "await_disable_propagation"

            await wait_until(waiting)
            clock.advance(14 * 86400 + 1)

            async def paused() -> bool:
                return (await state_of(client, rotation_id))["state"] == "paused"

            await wait_until(paused, timeout=30)
    finally:
        await runtime.stop()
        await worker.runtime.stop()
    finished = spans.get_finished_spans()
    (request,) = [s for s in finished if s.name == "POST /v1/rotations"]
    timed = [s for s in finished if s.name == "saga transition TimerFired"]
    assert timed, "no transition was caused by the timer"
    assert request.context is not None
    assert all(s.context and s.context.trace_id == request.context.trace_id for s in timed)
