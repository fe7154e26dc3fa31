"""Host operations done by a person (the manual driver): a task, then a confirmation."""

from __future__ import annotations

from typing import Literal

from certrotate_shared.registry import Command, Event, register


@register
class OperatorTaskRequested(Event):
    """A worker needs a person to do something on a server; shown in the API and the CLI."""

    task_id: str
    service: Literal["replication", "certificates"]
    site: str
    server: str | None = None
    title: str
    instructions: str
    # What the worker will check after the confirmation (served fingerprint, partner status).
    verification: str


@register
class ConfirmOperatorTask(Command):
    """The operator says the task is done; the worker verifies by observation, then reports."""

    target_service: Literal["replication", "certificates"]
    task_id: str
    confirmed_by: str
    note: str = ""

    def route(self) -> str:
        return self.target_service


def confirmation_key_prefix(saga_id: str, task_id: str) -> str:
    """Every confirmation of one task is keyed with this and its attempt: a worker forgetting
    a task it asked for finds their recorded outcomes by it."""
    return f"{saga_id}:confirm-{task_id}:"


@register
class OperatorTaskVerificationFailed(Event):
    """The operator confirmed, but what we observe does not match; the task stays open."""

    task_id: str
    reason: str
