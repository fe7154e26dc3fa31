"""Host operations SEPM has no REST call for, behind one interface with three drivers."""

from certrotate_shared.hostops.base import (
    CertificateBackup,
    CertificateBundle,
    HostOperationError,
    HostOperations,
    ManualTaskPending,
    OperatorTask,
)

__all__ = [
    "CertificateBackup",
    "CertificateBundle",
    "HostOperationError",
    "HostOperations",
    "ManualTaskPending",
    "OperatorTask",
]
