"""The secure-communications setting (SEPM.md, steps 2 and 5): where it lives in a location's
settings, what each mode wants, and what the orchestrator is told afterwards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from certrotate_shared.messages.certificates import GroupVerification

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


def group_results(
    originals: Iterable[LocationValue], serials: Mapping[str, str]
) -> tuple[list[GroupVerification], list[str]]:
    """Per group, its locations' original values and its serial now; plus groups gone since."""
    by_group: dict[str, list[LocationValue]] = {}
    for original in originals:
        by_group.setdefault(original.group_id, []).append(original)
    results, vanished = [], []
    for group_id, values in by_group.items():
        if group_id not in serials:
            vanished.append(values[0].full_path_name)
            continue
        results.append(
            GroupVerification(
                group_id=group_id,
                full_path_name=values[0].full_path_name,
                original_values={v.location_id: v.value for v in values},
                target_serial=serials[group_id],
            )
        )
    return results, vanished
