"""The happy path in embedded mode: the four services in this process (SQLite files, the
in-process transport), against the twin in its own process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from certrotate.stack import start_embedded
from tests.e2e.secret_scan import SecretScan
from tests.e2e.support import (
    LOG_ROOT,
    TwinProcess,
    World,
    assert_site_rotated,
    scenario,
    site_servers,
)

pytestmark = pytest.mark.e2e


async def test_the_happy_path_in_embedded_mode(
    tmp_path: Path, topic_prefix: str, secret_scan: SecretScan
) -> None:
    twin_scenario = scenario()
    workdir = LOG_ROOT / f"embedded-{topic_prefix}"
    twin = TwinProcess(twin_scenario, workdir)
    secret_scan.secret("SEPM account password", twin_scenario["admin"]["password"])
    secret_scan.log_dir(workdir)
    await twin.start()
    assert twin.http is not None
    secret_scan.watch_client(twin.http, "twin control", search_answers=False)
    try:
        data_dir = tmp_path / "data"
        stack = await start_embedded(data_dir, api_port=0, clock=await twin.clock_sync())
        secret_scan.secrets_file(data_dir / "secrets.json")
        secret_scan.transport_db(data_dir / "transport.db")
        try:
            async with httpx.AsyncClient(
                base_url=stack.api_url,
                headers={"Authorization": f"Bearer {stack.admin_token}"},
                timeout=30,
            ) as api:
                secret_scan.watch_client(api)
                world = World(twin=twin, api=api, admin_token=stack.admin_token)
                await world.register()
                before = {
                    s["name"]: s["served_fingerprint_sha256"].lower()
                    for s in await site_servers(world)
                }
                rotation_id, new_fp = await world.rotate()
                await assert_site_rotated(world, rotation_id, new_fp, before)
                await secret_scan.rotation_events(api)
        finally:
            await stack.stop()
    finally:
        await twin.stop()
