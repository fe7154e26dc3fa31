"""The body of every `python -m <service>`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from certrotate_shared.settings import ServiceSettings

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


def run_service_main(
    name: str,
    settings_cls: type[ServiceSettings],
    build_runtime: Callable[[Any], ServiceRuntime],
) -> None:
    """The body of every `python -m <service>`: load settings (exit 2 with the variables to fix),
    serve, print `ready <url>` once serving, stop cleanly on SIGTERM or SIGINT."""
    import signal
    import sys

    from certrotate_shared import event_loop
    from certrotate_shared.logs import configure_logging
    from certrotate_shared.settings import SettingsError, load_settings
    from certrotate_shared.tracing import configure_tracing, shutdown_tracing

    async def serve(settings: ServiceSettings) -> None:
        configure_logging(name, settings.log_level, settings.log_format)
        log.info("%s: running on %s", name, event_loop.running_loop_name())
        configure_tracing(name, settings.otlp_endpoint)
        runtime = build_runtime(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start()
        print(f"ready {runtime.http_url or ''}".strip(), flush=True)
        try:
            await stop.wait()
        finally:
            await runtime.stop()
            shutdown_tracing()

    try:
        # Read before the loop starts: the settings name the loop to start.
        settings = load_settings(settings_cls)
        event_loop.run(serve(settings), settings.event_loop)
    except (SettingsError, event_loop.EventLoopError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
