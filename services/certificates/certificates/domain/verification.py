"""The secure-communications setting (the vendor procedure, steps 2 and 5): where it lives in a location's
settings, what each mode wants, and what the orchestrator is told afterwards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from certrotate_shared.messages.certificates import GroupVerification
from certrotate_shared.sepm.groups import SepmGroup, policy_owners

Mode = Literal["disable", "restore"]


class SettingMissingError(ValueError):
    """A location's settings do not carry the value we must change."""


@dataclass(frozen=True)
class LocationValue:
    group_id: str
    location_id: str
    full_path_name: str
    value: bool


def secure_communications(settings: Mapping[str, Any]) -> bool:
    """configuration.general_settings.security_settings.secure_communications."""
    try:
        value = settings["configuration"]["general_settings"]["security_settings"][
            "secure_communications"
        ]
    except (KeyError, TypeError):
        raise SettingMissingError(
            "the location settings have no configuration.general_settings."
            "security_settings.secure_communications"
        ) from None
    if not isinstance(value, bool):
        raise SettingMissingError(f"secure_communications is {value!r}, not a boolean")
    return value


def patch_body(value: bool) -> dict[str, Any]:
    """The PATCH that sets only secure_communications."""
    return {
        "configuration": {
            "general_settings": {"security_settings": {"secure_communications": value}}
        }
    }


def wanted_value(mode: Mode, original: bool) -> bool:
    """disable: off everywhere; restore: exactly what was there before we disabled it."""
    return False if mode == "disable" else original


def from_messages(groups: Iterable[GroupVerification]) -> list[LocationValue]:
    """The per-location originals carried by GroupVerification messages."""
    return [
        LocationValue(g.group_id, location_id, g.full_path_name, value)
        for g in groups
        for location_id, value in g.original_values.items()
    ]


def group_results(
    originals: Iterable[LocationValue], groups: list[SepmGroup]
) -> tuple[list[GroupVerification], list[str]]:
    """Every group SEPM lists now, with its locations' originals (none for a group that
    inherits its policy) and the serial its clients must reach: its policy owner's. Plus the
    groups of the originals that SEPM no longer lists."""
    by_group: dict[str, list[LocationValue]] = {}
    for original in originals:
        by_group.setdefault(original.group_id, []).append(original)
    owners = policy_owners(groups)
    results = [
        GroupVerification(
            group_id=group.id,
            full_path_name=group.full_path_name,
            original_values={v.location_id: v.value for v in by_group.get(group.id, [])},
            target_serial=owners[group.id].policy_serial,
        )
        for group in groups
    ]
    listed = {group.id for group in groups}
    vanished = [values[0].full_path_name for gid, values in by_group.items() if gid not in listed]
    return results, vanished
