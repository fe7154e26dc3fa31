"""Groups, locations and their policy settings as a site's database holds them."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def twin_id(*parts: str) -> str:
    """A 32-character uppercase hex id like SEPM's, stable for the same inputs."""
    return hashlib.md5("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest().upper()


def policy_serial(group_id: str, policy_time_ms: int) -> str:
    """SEPM's serial: first four hex digits of the group id, then the GMT time with millis."""
    when = datetime.fromtimestamp(policy_time_ms / 1000, tz=UTC)
    return f"{group_id[:4]}-{when:%m/%d/%Y %H:%M:%S} {policy_time_ms % 1000:03d}"


def default_settings(*, secure: bool, push: bool, heartbeat_s: int) -> dict[str, Any]:
    return {
        "general_settings": {
            "security_settings": {"secure_communications": secure},
        },
        "communication_settings": {
            "mode": "PUSH" if push else "PULL",
            "pull_mode_heartbeat_freq_in_seconds": heartbeat_s,
            "push_mode_heartbeat_freq_in_seconds": heartbeat_s,
            "download_randomization_enabled": False,
        },
    }


@dataclass
class Location:
    id: str
    name: str
    settings: dict[str, Any]

    @property
    def secure(self) -> bool:
        return bool(self.settings["general_settings"]["security_settings"]["secure_communications"])

    @property
    def push(self) -> bool:
        return bool(self.settings["communication_settings"]["mode"] == "PUSH")

    @property
    def heartbeat_s(self) -> int:
        comm = self.settings["communication_settings"]
        key = (
            "push_mode_heartbeat_freq_in_seconds"
            if self.push
            else ("pull_mode_heartbeat_freq_in_seconds")
        )
        return int(comm[key])


@dataclass
class Group:
    id: str
    full_path: str
    policy_time_ms: int
    locations: list[Location] = field(default_factory=list)
    inheritance: bool = True

    @property
    def name(self) -> str:
        return self.full_path.rsplit("\\", 1)[-1]

    @property
    def serial(self) -> str:
        return policy_serial(self.id, self.policy_time_ms)

    def location(self, location_id: str) -> Location | None:
        return next((loc for loc in self.locations if loc.id == location_id), None)

    def copy(self) -> Group:
        return copy.deepcopy(self)


class SettingsError(ValueError):
    """A PATCH body SEPM would answer with 400."""


def _check(path: str, value: Any, expected: type | tuple[type, ...]) -> None:
    # bool is an int in Python; SEPM's JSON binder would not take true for a number.
    if (
        isinstance(value, bool)
        and expected is not bool
        and bool not in (expected if isinstance(expected, tuple) else (expected,))
    ):
        raise SettingsError(f"{path}: expected a number")
    if not isinstance(value, expected):
        raise SettingsError(f"{path}: wrong type")


_KNOWN: dict[tuple[str, ...], type | tuple[type, ...]] = {
    ("general_settings", "security_settings", "secure_communications"): bool,
    ("communication_settings", "mode"): str,
    ("communication_settings", "pull_mode_heartbeat_freq_in_seconds"): int,
    ("communication_settings", "push_mode_heartbeat_freq_in_seconds"): int,
}


def merge_settings(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The settings after a PATCH body `{configuration: {...}}`; raises SettingsError."""
    if not isinstance(patch, dict) or set(patch) != {"configuration"}:
        raise SettingsError("body must be an object with a single 'configuration' member")
    config = patch["configuration"]
    if not isinstance(config, dict):
        raise SettingsError("configuration must be an object")
    merged = copy.deepcopy(current)
    _merge_into(merged, config, ())
    mode = merged["communication_settings"]["mode"]
    if mode not in ("PULL", "PUSH"):
        raise SettingsError("communication_settings.mode must be PULL or PUSH")
    for key in ("pull_mode_heartbeat_freq_in_seconds", "push_mode_heartbeat_freq_in_seconds"):
        if merged["communication_settings"][key] <= 0:
            raise SettingsError(f"communication_settings.{key} must be positive")
    return merged


def _merge_into(target: dict[str, Any], patch: dict[str, Any], prefix: tuple[str, ...]) -> None:
    for key, value in patch.items():
        path = (*prefix, key)
        if path in _KNOWN:
            _check(".".join(path), value, _KNOWN[path])
            target[key] = value
        elif isinstance(value, dict):
            existing = target.get(key)
            if existing is not None and not isinstance(existing, dict):
                raise SettingsError(f"{'.'.join(path)}: expected a value, not an object")
            child = target.setdefault(key, {})
            _merge_into(child, value, path)
        else:
            if isinstance(target.get(key), dict):
                raise SettingsError(f"{'.'.join(path)}: expected an object")
            target[key] = value
