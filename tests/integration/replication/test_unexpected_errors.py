"""The replication worker's long-running operations classify their errors (issue 9 item 2): an
exception outside the typed ones ends the operation with its typed failure after a bounded
number of attempts, instead of a pass that fails and is retried for ever."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from certrotate_shared.messages.replication import BreakReplication
from replication.bootstrap import build_runtime
from tests.integration.replication.conftest import Stack

pytestmark = pytest.mark.integration


class BrokenDriver:
    """A host-operations factory whose driver fails in a way nobody planned for."""

    def __init__(self) -> None:
        self.opened = 0

    async def __call__(self, _site: Any) -> Any:
        self.opened += 1
        raise AttributeError("'NoneType' object has no attribute 'run_ps'")


async def test_an_unexpected_host_error_ends_the_break_in_its_typed_failure(stack: Stack) -> None:
    driver = BrokenDriver()
    settings = stack.settings.model_copy(
        update={"max_delivery_attempts": 3, "retry_base_delay_s": 0.05}
    )
    runtime = build_runtime(settings, hostops=driver)
    await runtime.start(serve_http=False)
    stack.runtimes.append(runtime)
    saga = str(uuid.uuid4())
    [sent] = await stack.send(
        BreakReplication(idempotency_key=f"{saga}:break:1", site=stack.site, partners=["site-b"]),
        saga_id=saga,
    )

    reply = await stack.reply(sent, timeout=60)

    assert reply.type == "ReplicationBreakFailed"
    assert reply.payload["retryable"] is False
    assert "AttributeError" in reply.payload["reason"]
    assert reply.payload["broken_partners"] == []
    assert driver.opened == 3
    # Nothing was deleted: the partnership is still there.
    assert "site-b" in await stack.partners()
