"""Counts and times every host operation, whatever the driver: one place, not three copies."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from certrotate_shared import metrics
from certrotate_shared.hostops.base import HostOperationError, HostOperations, ManualTaskPending

D = TypeVar("D", bound=HostOperations)

# The operations of the HostOperations protocol; `kind` is one of these (a bounded label).
KINDS = (
    "backup_certificate",
    "install_certificate",
    "restore_certificate",
    "delete_certificate_backup",
    "restart_service",
    "delete_replication_partner",
    "add_replication_partner",
)


def measured(driver: D, name: str) -> D:
    """The same driver object, its operations counted by kind and outcome and timed under
    `name` (it stays an instance of its class, for whoever checks which driver it is)."""
    for kind in KINDS:
        setattr(driver, kind, _measure(getattr(driver, kind), kind, name))
    return driver


def _measure(
    operation: Callable[..., Awaitable[Any]], kind: str, driver: str
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(operation)
    async def run(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        outcome = "failed"
        try:
            result = await operation(*args, **kwargs)
            outcome = "ok"
            return result
        except ManualTaskPending:
            outcome = "operator_task"  # a person's turn: neither success nor failure yet
            raise
        except HostOperationError as exc:
            outcome = "retryable" if exc.retryable else "failed"
            raise
        finally:
            metrics.HOST_OPERATIONS.labels(kind, driver, outcome).inc()
            metrics.HOST_OPERATION_DURATION.labels(kind, driver).observe(time.monotonic() - started)

    return run
