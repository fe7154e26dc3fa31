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


# The management server list every location uses unless an administrator assigns another.
DEFAULT_SERVER_LIST = "Default Management Server List"


def default_settings(*, secure: bool, push: bool, heartbeat_s: int) -> dict[str, Any]:
    """A location's settings as GroupSettingsConfiguration has them (only its field names)."""
    return {
        "communication_settings": {
            "mode": "PUSH" if push else "PULL",
            # SEPM has one heartbeat setting; in push mode the client reconnects at it.
            "pull_mode_heartbeat_freq_in_seconds": heartbeat_s,
            "upload_op_state_heartbeat_freq_in_seconds": heartbeat_s,
            "upload_log_heartbeat_freq_in_seconds": heartbeat_s,
            "upload_cmd_state_heartbeat_freq_in_seconds": heartbeat_s,
            "sem_server": {"name": DEFAULT_SERVER_LIST, "description": ""},
            "download_profile": True,
            "randomization_enabled": False,
            "randomization_frequency": 0,
            "randomization_range": 0,
        },
        "general_settings": {
            "security_settings": {"stopped_mode": "ALLOW", "secure_communications": secure},
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
        return int(self.settings["communication_settings"]["pull_mode_heartbeat_freq_in_seconds"])


@dataclass(frozen=True)
class Domain:
    """A SEPM domain: its own group tree (each with a My Company root), admins and clients."""

    id: str
    name: str
    created_ms: int
    description: str = ""

    def summary(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


DEFAULT_DOMAIN = "Default"


@dataclass
class Group:
    id: str
    full_path: str
    policy_time_ms: int
    domain: Domain
    locations: list[Location] = field(default_factory=list)
    # Inherits its parent's policy: then `locations` is empty and the owner's are reported.
    inheritance: bool = False
    parent_id: str | None = None

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


def policy_owner(group: Group, groups: dict[str, Group]) -> Group:
    """The group whose policy applies: itself, or the nearest ancestor that does not inherit."""
    while group.inheritance and group.parent_id in groups:
        group = groups[group.parent_id]
    return group


class SettingsError(ValueError):
    """A PATCH body SEPM would answer with 400."""


_INT = (int,)
# Every field of GroupSettingsConfiguration the twin knows, by path, with its JSON type.
# Objects not listed here (restart, password_protection, client_log, ...) are stored as given.
_FIELDS: dict[tuple[str, ...], tuple[type, ...]] = {
    ("communication_settings", "mode"): (str,),
    ("communication_settings", "pull_mode_heartbeat_freq_in_seconds"): _INT,
    ("communication_settings", "upload_op_state_heartbeat_freq_in_seconds"): _INT,
    ("communication_settings", "upload_log_heartbeat_freq_in_seconds"): _INT,
    ("communication_settings", "upload_cmd_state_heartbeat_freq_in_seconds"): _INT,
    ("communication_settings", "sem_server", "name"): (str,),
    ("communication_settings", "sem_server", "description"): (str,),
    ("communication_settings", "app_upload"): (bool,),
    ("communication_settings", "connect_to_server"): (bool,),
    ("communication_settings", "download_profile"): (bool,),
    ("communication_settings", "randomization_frequency"): _INT,
    ("communication_settings", "randomization_range"): _INT,
    ("communication_settings", "randomization_enabled"): (bool,),
    ("communication_settings", "remember_current_group"): (bool,),
    ("communication_settings", "allow_client_upload_critical_event_immediately"): (bool,),
    ("communication_settings", "remember_current_policy_mode"): (bool,),
    ("general_settings", "security_settings", "stopped_mode"): (str,),
    ("general_settings", "security_settings", "secure_communications"): (bool,),
}
_OBJECTS = {path[:depth] for path in _FIELDS for depth in range(1, len(path))}
_OPAQUE = {
    ("general_settings", "restart"),
    ("general_settings", "tamper_protection"),
    ("password_protection",),
    ("client_log",),
    ("live_update_content_settings",),
    ("external_communication_settings",),
}
_ENUMS = {
    ("communication_settings", "mode"): ("PULL", "PUSH"),
    ("general_settings", "security_settings", "stopped_mode"): (
        "ALLOW",
        "BLOCK",
        "ALLOW_STARTUP_ONLY",
    ),
}


def merge_settings(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The settings after a PATCH body `{configuration: {...}}`; raises SettingsError."""
    if not isinstance(patch, dict) or not set(patch) <= {"configuration", "lockedoptions"}:
        raise SettingsError("body must be an object with a 'configuration' member")
    config = patch.get("configuration")
    if not isinstance(config, dict):
        raise SettingsError("configuration must be an object")
    merged = copy.deepcopy(current)
    _merge_into(merged, config, ())
    comm = merged["communication_settings"]
    if comm["pull_mode_heartbeat_freq_in_seconds"] <= 0:
        raise SettingsError(
            "communication_settings.pull_mode_heartbeat_freq_in_seconds must be positive"
        )
    return merged


def _merge_into(target: dict[str, Any], patch: dict[str, Any], prefix: tuple[str, ...]) -> None:
    for key, value in patch.items():
        path = (*prefix, key)
        where = ".".join(path)
        if path in _FIELDS:
            expected = _FIELDS[path]
            # bool is an int in Python; SEPM's JSON binder would not take true for a number.
            if not isinstance(value, expected) or (
                isinstance(value, bool) and bool not in expected
            ):
                raise SettingsError(f"{where}: expected {expected[0].__name__}")
            if path in _ENUMS and value not in _ENUMS[path]:
                raise SettingsError(f"{where} must be one of {', '.join(_ENUMS[path])}")
            target[key] = value
        elif path in _OBJECTS or path in _OPAQUE:
            if not isinstance(value, dict):
                raise SettingsError(f"{where}: expected an object")
            child = target.setdefault(key, {})
            if path in _OPAQUE:
                child.update(copy.deepcopy(value))
            else:
                _merge_into(child, value, path)
        else:
            raise SettingsError(f"{where} is not a field of GroupSettingsConfiguration")
