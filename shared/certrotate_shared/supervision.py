"""A service's long-running loops (relay, consumer, background loops, the HTTP listener): each
a named task, restarted with back-off when it stops on an error, reported while it is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from certrotate_shared.failures import backoff_delay, describe
from certrotate_shared.settings import ServiceSettings

# The runtime's logger still, as before this module was split from it: log filters keep working.
log = logging.getLogger("certrotate_shared.runtime")


class Supervisor:
    """The tasks of one service, and the loops among them that are down (name -> the error)."""

    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        restart_sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._service = service
        self._settings = settings
        self._restart_sleep = restart_sleep or asyncio.sleep
        self.tasks: list[asyncio.Task[Any]] = []
        # Loops that stopped on an error and wait to be restarted: name -> the error.
        self.down: dict[str, str] = {}
        self.stopping = False

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` as the task `<service>:<name>`; an error it ends with is logged."""
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self._service}:{name}")
        task.add_done_callback(self._crashed)
        self.tasks.append(task)
        return task

    def _crashed(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped with an error", task.get_name(), exc_info=task.exception())

    async def keep_running(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        before_restart: Callable[[], None] | None = None,
    ) -> None:
        """Run a loop (the consumer, a background loop); when it stops on an error (a failed
        offset commit, a lost broker or database, anything a batch raised), restart it with
        back-off. /readyz fails while it is down."""
        settings = self._settings
        clock = asyncio.get_running_loop()
        failures = 0
        while True:
            started = clock.time()
            try:
                await run()
                return  # stopped on request
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    return
                # A loop that ran a good while before failing starts the back-off afresh.
                failures = (
                    1 if clock.time() - started > settings.consumer_restart_max_s else failures + 1
                )
                self.down[name] = describe(exc)
                delay = backoff_delay(
                    failures,
                    base_s=settings.consumer_restart_base_s,
                    cap_s=settings.consumer_restart_max_s,
                )
                log.error(
                    "%s %s stopped (%s); restarting in %.1f s",
                    self._service,
                    name,
                    self.down[name],
                    delay,
                    exc_info=exc,
                )
            await self._restart_sleep(delay)
            if self.stopping:
                return
            if before_restart is not None:
                before_restart()
            if name != "consumer":  # the consumer is up again once it is consuming
                self.down.pop(name, None)

    def problems(self) -> list[str]:
        """Tasks that have ended and loops that are down, but the consumer (the runtime knows
        whether it is consuming)."""
        problems = [f"{t.get_name()} stopped" for t in self.tasks if t.done()]
        problems += [
            f"{self._service}:{name} down after {error}; restarting"
            for name, error in self.down.items()
            if name != "consumer"
        ]
        return problems

    async def cancel_all(self) -> None:
        """Cancel every task and wait for each to end."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
