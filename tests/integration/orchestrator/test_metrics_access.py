"""CERTROTATE_ORCHESTRATOR_METRICS_AUTH=role: API tokens read /metrics by role; the internal
token alone does not. A worker cannot be set to `role` (it has no tokens): it refuses to start."""

from __future__ import annotations

import httpx
import pytest

from certrotate_shared.settings import SettingsError
from certrotate_shared.transport.local import LocalTransport
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
from replication.bootstrap import build_runtime as replication_runtime
from replication.settings import Settings as ReplicationSettings
from tests.integration.orchestrator.support import ADMIN, INTERNAL

pytestmark = pytest.mark.integration


async def test_role_mode_admits_tokens_with_the_role_and_refuses_the_rest(
    tmp_path, master_key
) -> None:
    runtime = build_runtime(
        Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/orchestrator.db",
            transport="local",
            local_log_path=str(tmp_path / "bus.db"),
            vault_url=f"sqlite+aiosqlite:///{tmp_path}/vault.db",
            master_key=master_key,
            admin_token=ADMIN,
            internal_token=INTERNAL,
            metrics_auth="role",
            metrics_role="operator",
        ),
        transport=LocalTransport(str(tmp_path / "bus.db")),
    )
    await runtime.start(serve_http=False)
    try:

        def client(token: str | None) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            assert runtime.app is not None
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=runtime.app),
                base_url="http://orch",
                headers=headers,
            )

        tokens = {}
        async with client(ADMIN) as admin:
            for role in ("viewer", "operator"):
                made = await admin.post(
                    "/v1/tokens", json={"name": f"{role}-scraper", "role": role}
                )
                tokens[role] = made.json()["token"]
        answers = {}
        for who, token in [("none", None), ("internal", INTERNAL), *tokens.items()]:
            async with client(token) as http:
                answers[who] = await http.get("/metrics")
    finally:
        await runtime.stop()
    assert answers["none"].status_code == 401
    assert answers["internal"].status_code == 401  # the internal token is no API token
    assert answers["viewer"].status_code == 403
    assert "operator" in answers["viewer"].json()["detail"]
    assert answers["viewer"].json()["code"] == "metrics_unauthorized"
    assert answers["operator"].status_code == 200
    assert "certrotate_rotations" in answers["operator"].text


def test_a_worker_set_to_role_refuses_to_start_and_says_what_to_set(tmp_path, master_key) -> None:
    settings = ReplicationSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/replication.db",
        transport="local",
        local_log_path=str(tmp_path / "bus.db"),
        master_key=master_key,
        internal_token=INTERNAL,
        metrics_auth="role",
    )
    with pytest.raises(SettingsError, match="CERTROTATE_REPLICATION_METRICS_AUTH=role"):
        replication_runtime(settings, transport=LocalTransport(str(tmp_path / "bus.db")))
