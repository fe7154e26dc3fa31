"""SEPM policy serial numbers (`A3AF-01/30/2012 23:50:54 284`) and their order.

The first four hex digits name the group (the start of its id); the rest is the GMT time of
the group's last policy change, to the millisecond. Serials of one group order by that time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_SERIAL = re.compile(
    r"^\s*(?P<group>[0-9A-Fa-f]{4})-(?P<month>\d{2})/(?P<day>\d{2})/(?P<year>\d{4}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<ms>\d{3})\s*$"
)


@dataclass(frozen=True)
class PolicySerial:
    group_prefix: str  # upper-case, four hex digits
    changed_at_ms: int  # GMT epoch milliseconds of the policy change


def parse_serial(serial: str | None) -> PolicySerial | None:
    """The serial's group prefix and time, or None if it does not have SEPM's form."""
    if not serial:
        return None
    match = _SERIAL.match(serial)
    if match is None:
        return None
    try:
        when = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return PolicySerial(match["group"].upper(), int(when.timestamp()) * 1000 + int(match["ms"]))


def is_target_or_later(serial: str | None, target: str) -> bool:
    """True if a client holding `serial` has the target policy of its group, or a later one.

    A serial of another group (a client that just moved, or a foreign prefix) never counts,
    and a serial we cannot parse counts only when it is exactly the target.
    """
    if not serial:
        return False
    if serial == target:
        return True
    wanted, held = parse_serial(target), parse_serial(serial)
    if wanted is None or held is None:
        return False
    return held.group_prefix == wanted.group_prefix and held.changed_at_ms >= wanted.changed_at_ms
