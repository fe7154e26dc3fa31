"""Host operations SEPM has no REST call for, behind one interface with three drivers.

The drivers (and their HTTP and WinRM clients) load on first use of `host_operations_for`, so
a domain module can import `certrotate_shared.hostops.arguments` without them.
"""

from typing import TYPE_CHECKING, Any

from certrotate_shared.hostops.base import (
    SEPM_SERVICES,
    CertificateBackup,
    CertificateBundle,
    HostOperationError,
    HostOperations,
    ManualTaskNotVerified,
    ManualTaskPending,
    OperatorTask,
    services_to_restart,
)
from certrotate_shared.hostops.manual_tasks import task_id_for

if TYPE_CHECKING:
    from certrotate_shared.hostops.factory import host_operations_for, open_host_operations


def __getattr__(name: str) -> Any:
    if name in ("host_operations_for", "open_host_operations"):
        from certrotate_shared.hostops import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SEPM_SERVICES",
    "CertificateBackup",
    "CertificateBundle",
    "HostOperationError",
    "HostOperations",
    "ManualTaskNotVerified",
    "ManualTaskPending",
    "OperatorTask",
    "host_operations_for",
    "open_host_operations",
    "services_to_restart",
    "task_id_for",
]
