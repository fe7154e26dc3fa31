"""The site as a whole: its version and its domains."""

from __future__ import annotations

from typing import Any

from certrotate_shared.sepm import answers
from certrotate_shared.sepm.api import SepmDomain
from certrotate_shared.sepm.session import SepmSession


class SiteCalls:
    _session: SepmSession

    async def version(self) -> dict[str, Any]:
        """GET /version: API_SEQUENCE, API_VERSION, version."""
        return answers.expect_object(*await self._session.get_json("/version", auth=False))

    async def domains(self) -> list[SepmDomain]:
        """GET /domains: every domain the account can see."""
        return answers.domains(*await self._session.get_json("/domains"))
