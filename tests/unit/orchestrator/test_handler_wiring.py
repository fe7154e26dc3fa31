"""The orchestrator's handlers have the workers' shape (issue 15): each names what it needs in
its signature and bootstrap binds it by name, the clock included, so a rehearsal's or a test's
clock is the one every recorded time comes from. A handler that reached for a bag of
everything, or for the wall clock, would not be bound to the runtime's clock."""

from __future__ import annotations

import functools
import inspect
from datetime import UTC, datetime

import pytest

from certrotate_shared.clock import ManualClock
from orchestrator.bootstrap import build_runtime
from orchestrator.service_layer.handlers import HANDLERS
from orchestrator.settings import Settings

pytestmark = pytest.mark.unit


def test_every_handler_is_bound_to_the_runtimes_own_clock(master_key: str) -> None:
    clock = ManualClock(datetime(2031, 3, 1, 12, 0, tzinfo=UTC))
    settings = Settings(
        master_key=master_key,
        internal_token="internal-token-for-tests-0123456789",
        admin_token="admin-token-for-tests-0123456789abcdef",
    )

    runtime = build_runtime(settings, transport=object(), clock=clock)  # type: ignore[arg-type]

    assert runtime.clock is clock
    assert set(runtime.spec.handlers) == set(HANDLERS)
    for event, handler in runtime.spec.handlers.items():
        assert isinstance(handler, functools.partial), event.__name__
        assert handler.keywords.get("clock") is clock, event.__name__
        assert "deps" not in handler.keywords, f"{event.__name__} still takes the Deps bag"


def test_handlers_are_typed_and_name_only_what_they_use() -> None:
    for event, handler in HANDLERS.items():
        signature = inspect.signature(handler)
        injected = [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert "clock" in injected, f"{handler.__name__} reads no injected clock"
        assert "deps" not in injected, f"{handler.__name__} takes the whole Deps bag"
        message = next(iter(signature.parameters.values()))
        assert message.annotation not in ("Message", inspect.Parameter.empty), (
            f"{handler.__name__} is not typed by the event it handles ({event.__name__})"
        )
