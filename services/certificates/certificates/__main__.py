"""`python -m certificates`: run the certificates service until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from certificates.bootstrap import build_runtime
from certificates.settings import Settings
from certrotate_shared.logs import configure_logging
from certrotate_shared.settings import SettingsError, load_settings


async def serve() -> None:
    settings = load_settings(Settings)
    configure_logging("certificates", settings.log_level)
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


def main() -> None:
    try:
        asyncio.run(serve())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
