"""What the procedures need from the certificate store; adapters/store.py is the SQL one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from certrotate_shared.hostops import CertificateBackup, CertificateBundle


class BundleUnavailableError(LookupError):
    """No bundle under that reference: never uploaded, rejected, or already purged."""


@dataclass(frozen=True)
class StoredBundle:
    bundle: CertificateBundle
    fingerprint_sha256: str


@dataclass(frozen=True)
class Original:
    group_id: str
    location_id: str
    full_path_name: str
    value: bool


class CertificateStore(Protocol):
    async def load_bundle(self, bundle_ref: str) -> StoredBundle:
        """Decrypt a bundle for one use; raises BundleUnavailableError."""
        ...

    async def originals(self, saga_id: str, site: str) -> list[Original]: ...

    async def record_original(self, saga_id: str, site: str, original: Original) -> None:
        """Remember a location's value before our change; the first record for it wins."""
        ...

    async def backup_for(
        self, saga_id: str, site: str, server: str
    ) -> CertificateBackup | None: ...

    async def record_backup(
        self, saga_id: str, site: str, server: str, backup: CertificateBackup
    ) -> CertificateBackup:
        """Keep the first backup of a server in a saga; returns the one kept."""
        ...

    async def forget_backup(self, saga_id: str, site: str, server: str) -> None:
        """The backup's files are gone from its host: drop its record."""
        ...
