"""Following a running twin's accelerated clock (`certrotate up --follow-twin URL`).

A rehearsal against `certrotate sim` only works when certrotate's timers and propagation scans
run at the twin's speed: on the real clock each scan of a 3,600x twin comes five real minutes
apart. The twin's control plane says its speed and what time it is; certrotate's services are
started on a scaled clock that agrees with it from then on.
"""

from __future__ import annotations

import time

import httpx

from certrotate.stack import ClockSync


class TwinClockError(RuntimeError):
    """The twin's clock cannot be read or cannot be followed."""


def read_twin_clock(url: str, *, timeout: float = 10.0) -> ClockSync:
    """The twin's speed and current time, tied to the real instant halfway through the call."""
    endpoint = f"{url.rstrip('/')}/twin/v1/clock"
    try:
        before = time.time()
        response = httpx.get(endpoint, timeout=timeout)
        after = time.time()
        response.raise_for_status()
        clock = response.json()
        speed, now_ms = float(clock["speed"]), int(clock["now_ms"])
    except httpx.HTTPError as exc:
        raise TwinClockError(
            f"cannot read the twin's clock at {endpoint}: {exc or type(exc).__name__} "
            "(is `certrotate sim` running there?)"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise TwinClockError(
            f"{endpoint} did not answer with a twin's clock (speed and now_ms)"
        ) from None
    if speed <= 0:
        raise TwinClockError(
            f"the twin's clock at {url} is stopped (speed {speed:g}: it moves only by "
            "/twin/v1/clock/advance); give the scenario a clock speed to rehearse against it"
        )
    return ClockSync(speed=speed, real_ms=int((before + after) * 500), sim_ms=now_ms)
