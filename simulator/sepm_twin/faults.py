"""Fault injection: what the twin should get wrong, where, and how many times."""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HTTP_KINDS = ("http_error", "timeout", "throttle", "token_expiry")
HOST_KINDS = ("install_failure", "service_start_failure", "replication_failure")

FaultKind = Literal[
    "http_error",
    "timeout",
    "throttle",
    "token_expiry",
    "install_failure",
    "service_start_failure",
    "replication_failure",
]


class FaultSpec(BaseModel):
    """One injected fault. Unset selectors match anything."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    # Selectors.
    site: str | None = None
    server: str | None = None
    method: str | None = None
    path: str | None = Field(default=None, description="regular expression searched in the path")
    service: str | None = None
    partner: str | None = None
    # Shape of the failure.
    status: int = Field(default=500, ge=400, le=599)
    delay_s: float = Field(default=30.0, ge=0)
    retry_after_s: int = Field(default=5, ge=0)
    status_code: str = "FAILED_CONNECT"
    message: str | None = None
    # How many times it fires; None = until deleted.
    count: int | None = Field(default=None, ge=1)


class Fault:
    def __init__(self, fault_id: str, spec: FaultSpec) -> None:
        self.id = fault_id
        self.spec = spec
        self.fired = 0
        self._path = re.compile(spec.path) if spec.path else None

    def matches(self, context: dict[str, Any]) -> bool:
        s = self.spec
        for name in ("site", "server", "service", "partner"):
            wanted = getattr(s, name)
            if wanted is not None and context.get(name) != wanted:
                return False
        if s.method and str(context.get("method", "")).upper() != s.method.upper():
            return False
        return not (self._path and not self._path.search(str(context.get("path", ""))))

    def as_dict(self) -> dict[str, Any]:
        remaining = None if self.spec.count is None else self.spec.count - self.fired
        return {
            "id": self.id,
            **self.spec.model_dump(exclude_none=True),
            "fired": self.fired,
            "remaining": remaining,
        }


class FaultBook:
    """The active faults; the first matching fault of a kind fires and counts down."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)

    def add(self, spec: FaultSpec | dict[str, Any]) -> Fault:
        parsed = spec if isinstance(spec, FaultSpec) else FaultSpec.model_validate(spec)
        fault = Fault(f"fault-{next(self._ids)}", parsed)
        self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self._faults.values()]

    def fire(self, kinds: tuple[str, ...], context: dict[str, Any]) -> FaultSpec | None:
        """The spec of the first active fault of those kinds that matches, counted as fired."""
        for fault in list(self._faults.values()):
            if fault.spec.kind in kinds and fault.matches(context):
                fault.fired += 1
                if fault.spec.count is not None and fault.fired >= fault.spec.count:
                    del self._faults[fault.id]
                return fault.spec
        return None
