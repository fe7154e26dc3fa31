"""Running the twin as a blocking program (`certrotate sim`, `python -m sepm_twin`)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from sepm_twin.scenario import Scenario, load_scenario
from sepm_twin.twin import Twin


def run(scenario_path: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
    """Start the twin, print one JSON ready line on stdout, and serve until SIGINT/SIGTERM."""
    try:
        scenario = load_scenario(Path(scenario_path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        # pydantic's ValidationError is a ValueError; its text names each bad field.
        sys.stderr.write(f"sepm_twin: cannot use scenario {scenario_path}: {exc}\n")
        raise SystemExit(2) from exc
    asyncio.run(_serve(scenario, host, port))


async def _serve(scenario: Scenario, host: str, port: int) -> None:
    twin = await Twin.start(scenario, host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        sys.stdout.write(orjson.dumps(ready_line(twin)).decode() + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await twin.stop()


def ready_line(twin: Twin) -> dict[str, Any]:
    topology = twin.topology()
    return {
        "event": "ready",
        "url": twin.base_url,
        "topology_url": f"{twin.base_url}/twin/v1/topology",
        "sites": {s["name"]: s["api_url"] for s in topology["sites"]},
        "clients": sum(s["clients"] for s in topology["sites"]),
    }
