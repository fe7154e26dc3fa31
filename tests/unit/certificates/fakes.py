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
from certrotate_shared.sepm import SepmDomain, SepmError, SepmLocation

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


DEFAULT_DOMAIN = "D-DEFAULT"


class FakeSepm:
    """Groups with locations over domains, as SEPM answers them.

    `groups` maps a group id to its own locations (location id -> secure_communications).
    `inherits` maps a child group id to its parent: the child lists the parent's locations and
    has the parent's serial (SEPM's REST definition; docs/design.md). `domain_of` puts a group in another domain
    than the Default one; GET /groups without a domain answers the login (Default) domain only.
    Every PATCH changes the serial of the group that owns the location, as SEPM does.
    """

    def __init__(
        self,
        groups: dict[str, dict[str, bool]],
        fail_patch_after: int | None = None,
        *,
        inherits: dict[str, str] | None = None,
        domain_of: dict[str, str] | None = None,
    ):
        self.settings = copy.deepcopy(groups)  # group id -> location id -> secure_communications
        self.inherits = dict(inherits or {})
        self.domain_of = dict(domain_of or {})
        self.serials = {g: f"{g[:4].upper()}-serial-0" for g in groups}
        self.patches: list[tuple[str, str, bool]] = []
        self.fail_patch_after = fail_patch_after
        self.closed = False

    def all_groups(self) -> list[str]:
        return [*self.settings, *(g for g in self.inherits if g not in self.settings)]

    def owner(self, group_id: str) -> str:
        while group_id in self.inherits:
            group_id = self.inherits[group_id]
        return group_id

    def path(self, group_id: str) -> str:
        parent = self.inherits.get(group_id)
        return f"{self.path(parent)}\\{group_id}" if parent else f"My Company\\{group_id}"

    def domain(self, group_id: str) -> str:
        return self.domain_of.get(self.owner(group_id), DEFAULT_DOMAIN)

    async def domains(self) -> list[SepmDomain]:
        ids = dict.fromkeys([DEFAULT_DOMAIN, *self.domain_of.values()])
        return [SepmDomain(id=d, name=d.removeprefix("D-").title()) for d in ids]

    async def iter_groups(
        self, *, domain_id: str | None = None, page_size: int = 25
    ) -> AsyncIterator[dict[str, Any]]:
        for group_id in self.all_groups():
            if self.domain(group_id) != (domain_id or DEFAULT_DOMAIN):
                continue
            yield {
                "id": group_id,
                "fullPathName": self.path(group_id),
                "policySerialNumber": self.serials[self.owner(group_id)],
                "policyInheritanceEnabled": group_id in self.inherits,
                "domain": {"id": self.domain(group_id), "name": "x"},
            }

    async def group_locations(
        self, group_id: str, *, domain_id: str | None = None
    ) -> list[SepmLocation]:
        if self.domain(group_id) != (domain_id or DEFAULT_DOMAIN):
            raise SepmError(
                "HTTP 410: Cannot find the specified object", status=410, retryable=False
            )
        owner = self.owner(group_id)
        return [SepmLocation(id=loc, name=loc) for loc in self.settings[owner]]

    async def get_location_settings(self, group_id: str, location_id: str) -> dict[str, Any]:
        owner = self.owner(group_id)
        if owner not in self.settings or location_id not in self.settings[owner]:
            raise SepmError("HTTP 404: location not found", status=404, retryable=False)
        value = self.settings[owner][location_id]
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
        owner = self.owner(group_id)
        self.settings[owner][location_id] = value
        self.patches.append((group_id, location_id, value))
        number = int(self.serials[owner].rsplit("-", 1)[1]) + 1
        self.serials[owner] = f"{owner[:4].upper()}-serial-{number}"

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

    # The certificates worker never touches replication; these complete HostOperations.
    async def delete_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        raise AssertionError("the certificates worker does not change replication")

    async def add_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        raise AssertionError("the certificates worker does not change replication")

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

    async def delete_certificate_backup(
        self, server: ServerTarget, backup_ref: str, *, key: str
    ) -> bool:
        self._call("delete_backup", key)
        return self.backups.pop(backup_ref, None) is not None

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

    async def forget_backup(self, saga_id: str, site: str, server: str) -> None:
        self.backups.pop((saga_id, site, server), None)


def new_bundle() -> StoredBundle:
    # The fake host "installs" whatever the data says: the new fingerprint.
    return StoredBundle(CertificateBundle("pkcs12", NEW.encode(), "pw"), NEW)
