"""A watch whose scanner keeps failing with an error nobody planned for ends in
PropagationWatchFailed after a bounded number of restarts (issue 9 item 2), instead of being
restarted every few seconds for ever while the rotation waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from certrotate_shared.messages.common import GroupTarget
from client_monitor.bootstrap import build_runtime
from tests.integration.client_monitor.conftest import TwinClock, scenario

pytestmark = pytest.mark.integration


async def test_a_watch_failing_unexpectedly_ends_in_its_typed_failure(make_stack) -> None:
    stack = await make_stack(
        scenario({"name": "My Company\\Default", "clients": 5}), max_delivery_attempts=2
    )
    connects: list[str] = []

    def broken_connector(site: Any) -> Any:
        connects.append(site.site)
        raise KeyError("computerName")

    runtime = build_runtime(
        stack.settings,
        clock=TwinClock(stack.twin),
        vault=stack.vault,
        sepm=broken_connector,
    )
    await runtime.start(serve_http=False)
    stack.runtimes.append(runtime)
    groups = [GroupTarget(group_id="1A2B", full_path_name="My Company\\Default", target_serial="s")]
    _, watch_id, sent = await stack.watch(groups, deadline_in=timedelta(days=7))

    failed = await stack.probe.wait_for("PropagationWatchFailed", timeout=60)

    assert failed.payload["watch_id"] == watch_id
    assert failed.causation_id == str(sent.message_id)
    assert failed.payload["retryable"] is False
    assert failed.payload["reason"] == "KeyError: 'computerName'"
    assert connects == ["site-a", "site-a"]
