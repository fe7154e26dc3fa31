"""In-memory stand-ins for SEPM, the host and the certificate store (no I/O)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

from certificates.service_layer.store import BundleUnavailableError, Original, StoredBundle
from certrotate_shared.hostops import (
    CertificateBackup,
    CertificateBundle,
    HostOperationError,
    services_to_restart,
)
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.sepm import SepmError, SepmLocation

OLD, NEW = "a" * 64, "b" * 64


def site(version: str = "14.3.9000") -> SiteTarget:
    return SiteTarget(
        site="site-a",
        version=version,
        api_url="https://sepm-a1:8446/sepm/api/v1",
        credential_ref="sepm/site-a",
        servers=[server(version)],
        host_ops=HostOpsTarget(driver="twin", endpoint="http://twin"),
    )


def server(version: str = "14.3.9000") -> ServerTarget:
    return ServerTarget(
        name="sepm-a1",
        address="127.0.0.1",
        version=version,
        ports={"8443": 1, "8446": 2, "443": 3, "8014": 4},
    )


class FakeSepm:
    """Groups with locations; every PATCH changes the group's serial, as SEPM does."""

    def __init__(self, groups: dict[str, dict[str, bool]], fail_patch_after: int | None = None):
        self.settings = copy.deepcopy(groups)  # group id -> location id -> secure_communications
        self.serials = {g: f"{g[:4].upper()}-serial-0" for g in groups}
        self.patches: list[tuple[str, str, bool]] = []
        self.fail_patch_after = fail_patch_after
        self.closed = False

    async def iter_groups(self, *, page_size: int = 25) -> AsyncIterator[dict[str, Any]]:
        for group_id in self.settings:
            yield {
                "id": group_id,
                "fullPathName": f"My Company\\{group_id}",
                "policySerialNumber": self.serials[group_id],
            }

    async def group_locations(
        self, group_id: str, *, domain_id: str | None = None
    ) -> list[SepmLocation]:
        return [SepmLocation(id=loc, name=loc) for loc in self.settings[group_id]]

    async def get_location_settings(self, group_id: str, location_id: str) -> dict[str, Any]:
        value = self.settings[group_id][location_id]
        return {
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": value}}
            }
        }

    async def patch_location_settings(
        self, group_id: str, location_id: str, body: dict[str, Any]
    ) -> None:
        if self.fail_patch_after is not None and len(self.patches) >= self.fail_patch_after:
            raise SepmError("SEPM answered 503 to PATCH", status=503, retryable=True)
        value = body["configuration"]["general_settings"]["security_settings"][
            "secure_communications"
        ]
        self.settings[group_id][location_id] = value
        self.patches.append((group_id, location_id, value))
        number = int(self.serials[group_id].rsplit("-", 1)[1]) + 1
        self.serials[group_id] = f"{group_id[:4].upper()}-serial-{number}"

    async def close(self) -> None:
        self.closed = True


class FakeHost:
    """One server: what is installed, what each TLS port serves, and every call made."""

    def __init__(
        self, *, version: str = "14.3.9000", fail: dict[str, HostOperationError] | None = None
    ):
        self.installed = OLD
        self.served = dict.fromkeys(("8443", "8446", "443"), OLD)
        self.services = services_to_restart(version)
        self.backups: dict[str, str] = {}
        self.calls: list[str] = []
        self.fail = fail or {}
        self.seen_keys: set[str] = set()

    def _call(self, name: str, key: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    async def backup_certificate(self, server: ServerTarget, *, key: str) -> CertificateBackup:
        self._call("backup", key)
        ref = f"backup-{len(self.backups) + 1}"
        self.backups[ref] = self.installed
        return CertificateBackup(ref, self.installed)

    async def install_certificate(
        self, server: ServerTarget, bundle: CertificateBundle, *, key: str
    ) -> None:
        self._call("install", key)
        self.installed = bundle.data.decode()

    async def restore_certificate(self, server: ServerTarget, backup_ref: str, *, key: str) -> None:
        self._call("restore", key)
        self.installed = self.backups[backup_ref]

    async def restart_service(self, server: ServerTarget, service: str, *, key: str) -> None:
        self._call(f"restart:{service}", key)
        ports = {"semwebsrv": ("8443", "443"), "semapisrv": ("8446",)}.get(service, ())
        if service == "semwebsrv" and "semapisrv" not in self.services:
            ports = ("8443", "8446", "443")
        for port in ports:
            self.served[port] = self.installed

    async def close(self) -> None:
        pass

    async def probe(self, server: ServerTarget) -> dict[str, str]:
        return dict(self.served)


class FakeStore:
    def __init__(self, bundles: dict[str, StoredBundle] | None = None) -> None:
        self.bundles = bundles or {}
        self._originals: dict[tuple[str, str], dict[tuple[str, str], Original]] = {}
        self.backups: dict[tuple[str, str, str], CertificateBackup] = {}

    async def load_bundle(self, bundle_ref: str) -> StoredBundle:
        if bundle_ref not in self.bundles:
            raise BundleUnavailableError(f"bundle {bundle_ref} is not in the certificate store")
        return self.bundles[bundle_ref]

    async def originals(self, saga_id: str, site: str) -> list[Original]:
        return list(self._originals.get((saga_id, site), {}).values())

    async def record_original(self, saga_id: str, site: str, original: Original) -> None:
        self._originals.setdefault((saga_id, site), {}).setdefault(
            (original.group_id, original.location_id), original
        )

    async def backup_for(self, saga_id: str, site: str, server: str) -> CertificateBackup | None:
        return self.backups.get((saga_id, site, server))

    async def record_backup(
        self, saga_id: str, site: str, server: str, backup: CertificateBackup
    ) -> CertificateBackup:
        return self.backups.setdefault((saga_id, site, server), backup)


def new_bundle() -> StoredBundle:
    # The fake host "installs" whatever the data says: the new fingerprint.
    return StoredBundle(CertificateBundle("pkcs12", NEW.encode(), "pw"), NEW)
