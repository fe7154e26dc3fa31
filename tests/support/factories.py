"""Small builders for messages used across test tiers."""

from __future__ import annotations

import uuid

from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.messages.replication import InspectSite


def site_target(name: str = "site-a") -> SiteTarget:
    return SiteTarget(
        site=name,
        version="14.3.9000",
        api_url="https://127.0.0.1:8446/sepm/api/v1",
        credential_ref=f"sepm/{name}",
        servers=[ServerTarget(name=f"{name}-1", address="127.0.0.1", version="14.3.9000")],
        host_ops=HostOpsTarget(driver="twin", endpoint="http://127.0.0.1:1"),
    )


def inspect_site(saga_id: str | None = None, attempt: int = 1) -> InspectSite:
    saga_id = saga_id or str(uuid.uuid4())
    return InspectSite(idempotency_key=f"{saga_id}:inspect:{attempt}", site=site_target())
