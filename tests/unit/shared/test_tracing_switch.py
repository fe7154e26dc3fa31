"""Tracing is off unless an OTLP endpoint is configured: then nothing is recorded or added."""

from __future__ import annotations

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


def test_an_endpoint_turns_tracing_on_and_messages_carry_a_w3c_traceparent() -> None:
    try:
        tracing.configure_tracing("orchestrator", "http://127.0.0.1:9/v1/traces")
        assert tracing.enabled()
        with tracing.span("request", kind=tracing.SERVER):
            headers = tracing.message_headers("send X", cause=None, attributes={})
        version, trace_id, span_id, flags = headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        assert len(trace_id) == 32 and len(span_id) == 16
        # A message sent with no span current continues its cause's trace.
        again = tracing.message_headers("send Y", cause=headers, attributes={})
        assert again["traceparent"].split("-")[1] == trace_id
    finally:
        provider = tracing._provider
        tracing.use_provider(None)
        getattr(provider, "shutdown", lambda: None)()  # nothing listens on port 9: drop spans
