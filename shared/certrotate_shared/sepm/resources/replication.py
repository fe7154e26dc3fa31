"""Replication as SEPM's REST definition offers it: whether the site replicates, the partners'
status and replicatenow."""

from __future__ import annotations

from typing import Any

from certrotate_shared.sepm import answers
from certrotate_shared.sepm.session import SepmSession, decode_json


class ReplicationCalls:
    _session: SepmSession

    async def is_replicated(self) -> bool:
        """GET /replication/is_replicated."""
        return answers.expect_bool(*await self._session.get_json("/replication/is_replicated"))

    async def replication_status(self) -> dict[str, Any]:
        """GET /replication/status."""
        body, where = await self._session.get_json("/replication/status")
        status = answers.expect_object(body, where)
        answers.nested_objects(status, ("replicationStatus", "replicationPartnerStatusList"), where)
        return status

    async def replicate_now(self, partner_site_name: str) -> int:
        """POST /replication/replicatenow (content=false, logs=false); returns `code`."""
        path = "/replication/replicatenow"
        params = {"partnerSiteName": partner_site_name, "content": "false", "logs": "false"}
        response = await self._session.call("POST", path, params=params, idempotent=False)
        where = f"POST {path}"
        body = answers.expect_object(decode_json(response, where), where)
        return answers.expect_int(body.get("code", -1), where, "code")
