"""The SEPM twin as `python -m sepm_twin` runs it, plus a count of the SEPM API calls each site
receives per simulated hour (every call passes the site's rate limiter, where it is counted).
Used by bench/campaign_scale.py to measure certrotate's load on each SEPM site; the counts are
written to --counts every few seconds and on exit. A benchmark aid: the product never uses it.

    python bench/counting_twin.py --scenario FILE --counts FILE [--host H] [--port N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from sepm_twin import cli
from sepm_twin.access import RateLimit
from sepm_twin.twin import Twin

HOUR_MS = 3_600_000
_counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
_clock: list[Any] = []
_original_take = RateLimit.take
# Twin.start is a classmethod: keep the plain function under it, to call with the class.
_original_start = Twin.__dict__["start"].__func__
# The periodic dump tasks, held so that they are not garbage-collected while they run.
_dumpers: list[asyncio.Future[None]] = []


def _counted_take(self: RateLimit) -> int | None:
    site = getattr(self, "site_name", None)
    if site is not None and _clock:
        _counts[site][_clock[0].now_ms() // HOUR_MS] += 1
    return _original_take(self)


def _write(path: Path) -> None:
    body = {site: {str(h): n for h, n in hours.items()} for site, hours in _counts.items()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--counts", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    async def start(cls: type[Twin], *a: Any, **kw: Any) -> Twin:
        twin: Twin = await _original_start(cls, *a, **kw)
        _clock.append(twin.world.clock)
        for name, site in twin.world.sites.items():
            setattr(site.rate_limit, "site_name", name)  # noqa: B010  (not a RateLimit field)

        async def dump() -> None:
            while True:
                await asyncio.sleep(5)
                _write(args.counts)

        _dumpers.append(asyncio.ensure_future(dump()))
        return twin

    # Patched on the classes, as the twin's CLI builds its own instances.
    setattr(RateLimit, "take", _counted_take)  # noqa: B010
    setattr(Twin, "start", classmethod(start))  # noqa: B010
    try:
        cli.run(args.scenario, args.host, args.port)
    finally:
        _write(args.counts)


if __name__ == "__main__":
    main()
