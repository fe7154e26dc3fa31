"""Host operations SEPM has no REST call for, behind one interface with three drivers."""

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
from certrotate_shared.hostops.factory import host_operations_for
from certrotate_shared.hostops.manual_tasks import task_id_for

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
    "services_to_restart",
    "task_id_for",
]
