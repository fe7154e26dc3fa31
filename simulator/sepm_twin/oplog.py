"""The host-operation log, and the idempotency that makes retried host operations safe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Recorded:
    operation: str
    target: str
    status: int
    body: Any


class OperationLog:
    """Every host-agent call, in order; a repeated Idempotency-Key replays the first result."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._results: dict[str, Recorded] = {}

    def previous(self, key: str) -> Recorded | None:
        return self._results.get(key)

    def record(
        self,
        *,
        key: str,
        at: str,
        operation: str,
        target: str,
        params: dict[str, Any],
        status: int,
        body: Any,
        replay: bool = False,
        remember: bool = True,
    ) -> None:
        outcome = "ok" if status < 400 else f"error {status}"
        if isinstance(body, dict) and status >= 400 and "errorMessage" in body:
            outcome = f"{outcome}: {body['errorMessage']}"
        self.entries.append(
            {
                "seq": len(self.entries) + 1,
                "at": at,
                "idempotency_key": key,
                "operation": operation,
                "target": target,
                "params": params,
                "outcome": outcome,
                "status": status,
                "replay": replay,
            }
        )
        # Failures the caller is expected to retry with the same key (5xx, throttling) are
        # not remembered; anything else is the operation's final answer for that key.
        if not replay and remember:
            self._results[key] = Recorded(operation, target, status, body)
