"""Host operations SEPM has no REST call for, behind one interface with three drivers."""

from certrotate_shared.hostops.base import (
    SEPM_SERVICES,
    CertificateBackup,
    CertificateBundle,
    HostOperationError,
    HostOperations,
    ManualTaskPending,
    OperatorTask,
    services_to_restart,
)
from certrotate_shared.hostops.factory import host_operations_for

__all__ = [
    "SEPM_SERVICES",
    "CertificateBackup",
    "CertificateBundle",
    "HostOperationError",
    "HostOperations",
    "ManualTaskPending",
    "OperatorTask",
    "host_operations_for",
    "services_to_restart",
]
