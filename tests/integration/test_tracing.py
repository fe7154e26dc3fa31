"""One rotation can be followed across the services: it is one trace (the API request, each saga
transition, each command and the worker handling it, each event and the transition it causes,
linked through the envelope's headers: the in-process log here, as Kafka would carry them), and
its log lines in every service carry its id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certrotate_shared import tracing
from certrotate_shared.logs import log_formatter
from tests.integration.embedded_twin import Live, eventually, live

pytestmark = pytest.mark.integration

__all__ = ["live"]  # the fixture


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of the process, as the JSON a distributed service writes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log_formatter("embedded", "json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


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


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attr(span: ReadableSpan, key: str) -> object:
    return (span.attributes or {}).get(key)


def parent_id(span: ReadableSpan) -> int:
    assert span.parent is not None, f"{span.name} has no parent"
    return span.parent.span_id


def own_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def test_one_rotation_is_one_trace_and_its_log_lines_carry_its_id_in_every_service(
    spans: InMemorySpanExporter, log_lines: io.StringIO, live: Live
) -> None:
    rotation_id = await live.rotate("site-a")

    async def completed() -> bool:
        return (await live.state(rotation_id))["state"] == "completed"

    await eventually(completed)
    finished = list(spans.get_finished_spans())
    ours = [s for s in finished if attr(s, "certrotate.rotation_id") == rotation_id]
    by_id = {own_id(s): s for s in finished}

    (request,) = named(finished, "POST /v1/rotations")
    trace_ids = {s.context.trace_id for s in [request, *ours] if s.context is not None}
    assert len(trace_ids) == 1

    # A worker handles a command as a child of the span that sent it, in the same trace.
    (break_,) = named(ours, "handle BreakReplication")
    assert attr(break_, "certrotate.service") == "replication"
    sent = by_id[parent_id(break_)]
    assert sent.name == "send BreakReplication"
    assert by_id[parent_id(sent)].name.startswith("saga transition")
    # Its answer goes back to the orchestrator and advances the saga, still the same trace.
    (answer,) = named(ours, "handle ReplicationBroken")
    assert attr(answer, "certrotate.service") == "orchestrator"
    assert by_id[parent_id(answer)].name == "send ReplicationBroken"
    # The worker did the break in a job after handling the command: the job's span continues
    # the command's trace, and the answer is its child.
    work = by_id[parent_id(by_id[parent_id(answer)])]
    assert work.name == "work BreakReplication"
    assert by_id[parent_id(work)] is sent
    assert all(
        attr(s, "certrotate.service") == "certificates"
        for s in named(ours, "work UpdateServerCertificate")
    )
    assert len(named(ours, "work UpdateServerCertificate")) >= 2
    # Every worker took part, and the propagation watch's events (sent by its scan loop, not
    # while a message was handled) continue the trace from the command that opened it.
    services = {attr(s, "certrotate.service") for s in ours}
    assert {"orchestrator", "replication", "certificates", "client-monitor"} <= services
    assert len(named(ours, "handle PolicyPropagated")) == 2
    assert len(named(ours, "handle UpdateServerCertificate")) == 2
    transitions = [s for s in ours if s.name.startswith("saga transition")]
    assert len(transitions) >= 10
    assert all(attr(s, "certrotate.step") for s in transitions)

    # The log lines about it, whichever service wrote them, carry its id, site and step.
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    about = [line for line in lines if line.get("rotation_id") == rotation_id]
    writers = {line["logger"].split(".")[0] for line in about}
    assert {"certificates", "replication", "client_monitor", "certrotate_shared"} <= writers
    assert all(line["site"] == "site-a" for line in about)
    assert {line.get("step") for line in about} >= {"break_replication", "update_certificate"}
    assert any(line.get("message_id") and line.get("causation_id") for line in about)
