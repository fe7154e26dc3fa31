"""The happy path in embedded mode: the four services in this process (SQLite files, the
in-process transport), against the twin in its own process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from certrotate.stack import start_embedded
from tests.e2e.support import (
    LOG_ROOT,
    TwinProcess,
    World,
    assert_site_rotated,
    scenario,
    site_servers,
)

pytestmark = pytest.mark.e2e


async def test_the_happy_path_in_embedded_mode(tmp_path: Path, topic_prefix: str) -> None:
    twin = TwinProcess(scenario(), LOG_ROOT / f"embedded-{topic_prefix}")
    await twin.start()
    try:
        stack = await start_embedded(tmp_path / "data", api_port=0, clock=await twin.clock_sync())
        try:
            async with httpx.AsyncClient(
                base_url=stack.api_url,
                headers={"Authorization": f"Bearer {stack.admin_token}"},
                timeout=30,
            ) as api:
                world = World(twin=twin, api=api, admin_token=stack.admin_token)
                await world.register()
                before = {
                    s["name"]: s["served_fingerprint_sha256"].lower()
                    for s in await site_servers(world)
                }
                rotation_id, new_fp = await world.rotate()
                await assert_site_rotated(world, rotation_id, new_fp, before)
        finally:
            await stack.stop()
    finally:
        await twin.stop()
