"""A worker process for backbone tests: answers InspectSite, recording each side effect.

Run as `python -m tests.support.echo_worker`; configured by CERTROTATE_REPLICATION_* variables.
Site "poison" always fails with a bug (answered with SiteInspectionFailed); site "flaky" fails
with a refused connection its first FLAKY_FAILURES times (waited out); CancelPropagationWatch
for watch "poison" always fails (no typed failure: parked in the DLQ).
`--crash-after-handling` SIGKILLs itself after handling its first batch, before the offset
commit, which is the worst moment for an at-least-once consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from sqlalchemy import text

from certrotate_shared import event_loop
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Event, Message
from certrotate_shared.logs import configure_logging
from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from certrotate_shared.messages.replication import InspectSite, SiteInspected
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.settings import ServiceSettings, SettingsConfigDict, load_settings
from certrotate_shared.topics import commands_topic


class EchoSettings(ServiceSettings):
    service = "replication"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_REPLICATION_")


FLAKY_FAILURES = 4
_EFFECTS = "echo.side_effects"
_INSERT_EFFECT = text("INSERT INTO echo_side_effects (message_id) VALUES (:m)")
_flaky_calls: dict[object, int] = {}


async def cancel_watch(message: Message, ctx: Context) -> Event | None:
    assert isinstance(message, CancelPropagationWatch)
    if message.watch_id == "poison":
        raise RuntimeError("this watch always fails")
    return None


async def answer_inspect_site(message: Message, ctx: Context) -> Event | None:
    assert isinstance(message, InspectSite)
    # The side effect whose count the tests check: one row per handling, written as a batched
    # handler writes (the orchestrator's history, say): queued, and sent for the whole
    # transaction at once (one executemany) just before it commits.
    session = ctx.uow.session
    session.info.setdefault(_EFFECTS, []).append({"m": str(ctx.envelope.message_id)})

    async def flush() -> None:
        await session.execute(_INSERT_EFFECT, session.info.pop(_EFFECTS, []))

    ctx.uow.defer(_EFFECTS, flush)
    if message.site.site == "poison":
        raise RuntimeError("this site always fails")
    if message.site.site == "flaky":
        _flaky_calls[ctx.envelope.message_id] = _flaky_calls.get(ctx.envelope.message_id, 0) + 1
        if _flaky_calls[ctx.envelope.message_id] <= FLAKY_FAILURES:
            raise ConnectionRefusedError(111, "Connection refused")
    return SiteInspected(site=message.site.site, version="14.3.9000", replicated=False, partners=[])


async def main(crash_after_handling: bool, batch: bool) -> None:
    settings = load_settings(EchoSettings)
    configure_logging("echo-worker", settings.log_level)

    async def crash() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    runtime = ServiceRuntime(
        settings,
        ServiceSpec(
            name="replication",
            handlers={InspectSite: answer_inspect_site, CancelPropagationWatch: cancel_watch},
            topics=lambda prefix: [commands_topic("replication", prefix)],
            batch_transactions=batch,
        ),
        before_commit=crash if crash_after_handling else None,
    )
    await runtime.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--crash-after-handling", action="store_true")
    parser.add_argument("--batch", action="store_true", help="one transaction per fetched batch")
    args = parser.parse_args()
    try:
        event_loop.run(main(args.crash_after_handling, args.batch))
    except KeyboardInterrupt:
        sys.exit(0)
