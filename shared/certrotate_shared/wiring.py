"""How every service's bootstrap hands dependencies to its handlers and performers: by the
name of the parameter (cosmicpython's bootstrap). A handler says what it needs in its
signature (`clock`, `sepm`, `work`...) and gets exactly that; tests call it with fakes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

K = TypeVar("K")


class MissingDependencyError(TypeError):
    """A handler asks for a dependency its service's bootstrap does not provide."""


def inject(fn: Callable[..., Any], dependencies: Mapping[str, Any]) -> Callable[..., Any]:
    """`fn` with each keyword-only parameter it names bound from `dependencies`."""
    wanted = [
        name
        for name, parameter in inspect.signature(fn).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    missing = [name for name in wanted if name not in dependencies]
    if missing:
        raise MissingDependencyError(
            f"{fn.__qualname__} needs {', '.join(missing)}, which bootstrap does not provide"
        )
    return functools.partial(fn, **{name: dependencies[name] for name in wanted})


def inject_all(
    table: Mapping[K, Callable[..., Any]], dependencies: Mapping[str, Any]
) -> dict[K, Callable[..., Any]]:
    """A handler (or work) table with every entry's dependencies bound."""
    return {key: inject(fn, dependencies) for key, fn in table.items()}
