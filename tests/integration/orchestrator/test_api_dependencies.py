"""Every dependency of the orchestrator's routes runs on the event loop.

FastAPI runs a plain `def` dependency in a worker thread: two thread hand-offs per request,
measured at a sixth of a conditional poll's CPU (docs/benchmarks.md, API reads). A dashboard
polls; such a dependency slipping back in is a cost nobody would see in a functional test."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

pytestmark = pytest.mark.integration


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _routes(routes: list[Any]) -> Iterator[tuple[str, Iterator[object]]]:
    """Each route with its dependencies, through routers included in the app (FastAPI keeps
    an included router as one entry that holds the router's own routes)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route.path, _calls(route.dependant)
        elif hasattr(route, "original_router"):
            extra = [d.dependency for d in route.include_context.dependencies]
            for path, calls in _routes(route.original_router.routes):
                yield path, iter([*extra, *calls])


def test_no_route_dependency_runs_in_a_thread(embedded):
    routes = [(path, list(calls)) for path, calls in _routes(embedded.runtime.app.routes)]
    assert len(routes) > 40 and sum(len(calls) for _, calls in routes) > 80
    threaded = sorted(
        {
            f"{path}: {getattr(call, '__qualname__', call)}"
            for path, calls in routes
            for call in calls
            if not (
                inspect.iscoroutinefunction(call)
                or inspect.isasyncgenfunction(call)
                or inspect.iscoroutinefunction(type(call).__call__)  # a callable instance
            )
        }
    )
    assert threaded == []
