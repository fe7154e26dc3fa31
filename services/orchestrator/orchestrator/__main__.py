"""`python -m orchestrator`: run the orchestrator until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from certrotate_shared.logs import configure_logging
from certrotate_shared.settings import SettingsError, load_settings
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings


async def main() -> None:
    settings = load_settings(Settings)
    configure_logging("orchestrator", settings.log_level)
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


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
