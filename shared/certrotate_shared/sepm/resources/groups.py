"""Groups, their locations and each location's settings (where `secure_communications` lives,
per group and location: SEPM's REST definition, `GroupSettingsConfiguration`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from certrotate_shared.sepm import answers
from certrotate_shared.sepm.api import SepmLocation
from certrotate_shared.sepm.paging import pages
from certrotate_shared.sepm.session import SepmSession


class GroupCalls:
    _session: SepmSession

    async def iter_groups(
        self, *, domain_id: str | None = None, page_size: int = 25
    ) -> AsyncIterator[dict[str, Any]]:
        """Every group of a domain (GET /groups, paged); each has a string `id`."""
        params = {"domain": domain_id} if domain_id else {}
        async for page in pages(self._session, "/groups", params, page_size, key="id"):
            if domain_id:
                answers.check_domain(page, domain_id, "GET /groups", _group_domain)
            for group in page:
                yield group

    async def group_locations(
        self, group_id: str, *, domain_id: str | None = None
    ) -> list[SepmLocation]:
        """GET /groups/{id}/locations?hasName=true: names and ids of the locations."""
        params: dict[str, Any] = {"hasName": "true"}
        if domain_id:
            params["domainId"] = domain_id
        return answers.locations(
            *await self._session.get_json(f"/groups/{group_id}/locations", params=params)
        )

    async def get_location_settings(self, group_id: str, location_id: str) -> dict[str, Any]:
        """GET /groups/{g}/locations/{l}/settings."""
        path = f"/groups/{group_id}/locations/{location_id}/settings"
        return answers.expect_object(*await self._session.get_json(path))

    async def patch_location_settings(
        self, group_id: str, location_id: str, body: dict[str, Any]
    ) -> None:
        """PATCH /groups/{g}/locations/{l}/settings (absolute values, so safe to repeat)."""
        path = f"/groups/{group_id}/locations/{location_id}/settings"
        await self._session.call("PATCH", path, json=body, idempotent=True)


def _group_domain(group: dict[str, Any]) -> Any:
    return group.get("domain")
