"""Tracing is off unless an OTLP endpoint is configured: then nothing is recorded or added."""

from __future__ import annotations

import httpx
import pytest

from certrotate_shared import tracing
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.replication import BreakReplication
from tests.support.factories import site_target

pytestmark = pytest.mark.unit


def test_without_an_endpoint_no_span_is_made_and_messages_carry_no_trace_headers() -> None:
    tracing.configure_tracing("orchestrator", "")
    assert not tracing.enabled()
    with tracing.span("anything") as span:
        assert span is None
    assert tracing.message_headers("send X", cause=None, attributes={}) == {}
    command = BreakReplication(
        idempotency_key="r:break_replication:1", site=site_target(), partners=[]
    )
    assert Envelope.wrap(command, saga_id="r").headers == {}


def test_an_endpoint_turns_tracing_on_with_an_otlp_exporter() -> None:
    tracing.configure_tracing("orchestrator", "http://127.0.0.1:9/v1/traces")
    provider = tracing._provider
    try:
        assert tracing.enabled()
        resource = getattr(provider, "resource", None)
        assert resource is not None
        assert resource.attributes["service.name"] == "certrotate-orchestrator"
    finally:
        tracing.use_provider(None)
        getattr(provider, "shutdown", lambda: None)()  # no span was made: nothing to send


def test_messages_carry_a_w3c_traceparent_that_continues_their_causes_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracing.use_provider(TracerProvider())
    try:
        with tracing.span("request", kind=tracing.SERVER):
            headers = tracing.message_headers("send X", cause=None, attributes={})
        version, trace_id, span_id, flags = headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        assert len(trace_id) == 32 and len(span_id) == 16
        # A message sent with no span current continues its cause's trace.
        again = tracing.message_headers("send Y", cause=headers, attributes={})
        assert again["traceparent"].split("-")[1] == trace_id
    finally:
        tracing.use_provider(None)


async def test_a_call_to_another_service_carries_the_callers_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from pydantic import SecretStr

    from certrotate_shared.internal_api import internal_client
    from certrotate_shared.settings import ServiceSettings

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    settings = ServiceSettings(master_key=SecretStr("A" * 43 + "="))
    client = internal_client(
        settings, "http://certificates", SecretStr("t" * 20), transport=httpx.MockTransport(answer)
    )
    tracing.use_provider(TracerProvider())
    try:
        with tracing.span("POST /v1/rotations", kind=tracing.SERVER):
            caller = tracing.current_headers()["traceparent"]
            await client.get("/internal/v1/bundles/x")
    finally:
        tracing.use_provider(None)
        await client.aclose()
    assert seen[0].headers["traceparent"] == caller
