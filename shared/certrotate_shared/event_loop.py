"""The event loop a certrotate process runs on: uvloop where it exists, asyncio's otherwise.

Every message costs a process several socket round trips (PostgreSQL, Kafka) and as many turns
of its event loop; on asyncio's pure-Python loop those turns (and its socket transports) were
a third of a worker's profile samples. uvloop (libuv, from asyncpg's authors) does the same
work in C: 0-17 % less CPU per round trip at one message in flight (docs/benchmarks.md).
There is no uvloop for Windows: "auto" falls back to asyncio's loop there, and "asyncio" is the way back
should a library ever misbehave on uvloop."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, get_args

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
CHOICES: tuple[str, ...] = get_args(EventLoopChoice)
VARIABLE = "CERTROTATE_EVENT_LOOP"

T = TypeVar("T")


class EventLoopError(RuntimeError):
    """The event loop asked for cannot run here."""


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the loop `choice` names (None: asyncio's own)."""
    if choice not in CHOICES:
        raise EventLoopError(f"{VARIABLE}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise EventLoopError(
                f"{VARIABLE}=uvloop, but uvloop is not installed (it does not exist for "
                "Windows): use auto or asyncio"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], choice: str | None = None) -> T:
    """asyncio.run(main) on the loop `choice` names (None: CERTROTATE_EVENT_LOOP, else auto;
    a service's settings read the same variable)."""
    if choice is None:
        choice = os.environ.get(VARIABLE, "auto")
    try:
        factory = loop_factory(choice)
    except EventLoopError:
        main.close()  # never awaited: say so without a "never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """uvloop or asyncio: what this process runs on (for its start-up log line)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
