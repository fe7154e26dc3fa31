"""The hook every saga transition calls: it queues callbacks only when something a subscriber
hears about changed, and otherwise costs the hot path no database statement."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.domain.inputs import PauseRequested
from orchestrator.domain.subscriptions import marks_of
from orchestrator.service_layer.callbacks import record_transition
from tests.unit.orchestrator.saga_driver import SagaDriver, success

pytestmark = pytest.mark.unit


class CountingSession:
    """A transaction on a database other than PostgreSQL (SQLAlchemy's path), counting."""

    def __init__(self) -> None:
        self.statements: list[Any] = []
        self.info: dict[str, Any] = {}

    async def connection(self) -> Any:
        return SimpleNamespace(dialect=SimpleNamespace(name="sqlite"))

    async def execute(self, statement: Any, *args: Any) -> Any:
        self.statements.append(statement)
        return []  # no subscriptions


def uow_of(session: CountingSession) -> UnitOfWork:
    """record_transition only reaches the unit of work's session."""
    return cast(UnitOfWork, SimpleNamespace(session=session))


async def test_a_transition_with_no_news_runs_no_statement():
    saga = SagaDriver()
    before = marks_of(saga.state)
    decision = saga.answer(success(saga.awaited))
    assert decision.state.status == "running"  # InspectSite answered: on to the next step
    session = CountingSession()
    await record_transition(uow_of(session), before, decision)
    assert session.statements == []


async def test_a_pause_looks_up_the_subscribers_in_the_same_transaction():
    saga = SagaDriver()
    before = marks_of(saga.state)
    decision = saga.apply(PauseRequested(by="ops", reason="change freeze"))
    assert decision.state.status == "paused"
    session = CountingSession()
    await record_transition(uow_of(session), before, decision)
    assert len(session.statements) == 1  # the subscriptions; none, so nothing is queued


async def test_a_batch_of_transitions_reads_the_subscribers_once():
    """Many sagas pause in one transaction (a batch): the subscriptions are read once."""
    session = CountingSession()
    for _ in range(3):
        saga = SagaDriver()
        before = marks_of(saga.state)
        decision = saga.apply(PauseRequested(by="ops", reason="change freeze"))
        await record_transition(uow_of(session), before, decision)
    assert len(session.statements) == 1
