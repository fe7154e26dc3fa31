"""The scenario file: the fleet a twin simulates (a minimum schema, extended; simulator/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sepm_twin.faults import FaultSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClockSpec(_Strict):
    speed: float = Field(default=3600.0, ge=0)
    # Simulated start; default is the real time at start-up.
    start: datetime | None = None


class OfflineSpec(_Strict):
    fraction: float = Field(ge=0, le=1)
    # How many simulated days from the start they stay offline.
    days: float = Field(ge=0)
    # How many days before the start they went offline (their last check-in), for stale clients.
    since_days: float = Field(default=0, ge=0)


class GroupSpec(_Strict):
    name: str
    domain: str = "Default"
    # SEPM's "Inherit policies and settings from parent group": the group has no policy of its
    # own; it reports its owning ancestor's locations and serial.
    inherits: bool = False
    clients: int = Field(default=0, ge=0)
    mode: Literal["pull", "push"] = "pull"
    heartbeat_s: int = Field(default=300, gt=0)
    offline: OfflineSpec | None = None
    secure_communications: bool = True
    locations: list[str] = Field(default_factory=lambda: ["Default"])
    # Agent version -> fraction of the group's clients; the rest run the site's version.
    agent_versions: dict[str, float] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _full_path(cls, value: str) -> str:
        parts = [p for p in value.split("\\") if p]
        if not parts:
            raise ValueError("group name must be a full path like 'My Company\\\\Default'")
        return "\\".join(parts)

    @field_validator("locations")
    @classmethod
    def _some_location(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("locations must be a non-empty list of distinct names")
        if any(":" in name for name in value):
            raise ValueError("a location name cannot contain ':' (SEPM's locations answer)")
        return value

    @field_validator("agent_versions")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        if any(f < 0 for f in value.values()) or sum(value.values()) > 1 + 1e-9:
            raise ValueError("agent_versions fractions must be >= 0 and add up to at most 1")
        return value

    @model_validator(mode="after")
    def _root_owns_its_policy(self) -> GroupSpec:
        if self.inherits and "\\" not in self.name:
            raise ValueError(f"{self.name}: a domain's root group cannot inherit policy")
        owned = {"mode", "heartbeat_s", "secure_communications", "locations"}
        if self.inherits and owned & self.model_fields_set:
            raise ValueError(
                f"{self.name} inherits its policy, so it cannot set "
                f"{', '.join(sorted(owned & self.model_fields_set))}: set them on its owner"
            )
        return self


class ServerSpec(_Strict):
    name: str
    hostnames: list[str] | None = None

    def resolved_hostnames(self) -> list[str]:
        return self.hostnames or [f"{self.name}.twin.example", "127.0.0.1"]


class RateLimitSpec(_Strict):
    calls_per_minute: float = Field(gt=0)


class ReplicationSpec(_Strict):
    interval_s: float = Field(default=3600.0, gt=0)
    # How long one replication run takes in simulated seconds.
    duration_s: float = Field(default=60.0, ge=0)


class SiteSpec(_Strict):
    name: str
    version: str = "14.3.9000"
    version_full: str | None = None
    servers: list[ServerSpec]
    replication_partners: list[str] = Field(default_factory=list)
    groups: list[GroupSpec] = Field(default_factory=list)
    rate_limit: RateLimitSpec | None = None

    @field_validator("servers")
    @classmethod
    def _at_least_one(cls, value: list[ServerSpec]) -> list[ServerSpec]:
        if not value:
            raise ValueError("a site needs at least one management server")
        return value


class AdminSpec(_Strict):
    username: str = "admin"
    password: str = "admin"  # noqa: S105 - a simulator's default login, documented as such
    domain: str = ""


class Scenario(_Strict):
    seed: int = 0
    # What a settings PATCH on a group that inherits does (to verify on a real SEPM): refuse
    # it (400), or change the owning ancestor's policy, whose location ids the group reports.
    inherited_settings_patch: Literal["refuse", "owner"] = "refuse"
    clock: ClockSpec = Field(default_factory=ClockSpec)
    admin: AdminSpec = Field(default_factory=AdminSpec)
    token_ttl_s: int = Field(default=3600, gt=0)
    rate_limit: RateLimitSpec | None = None
    replication: ReplicationSpec = Field(default_factory=ReplicationSpec)
    sites: list[SiteSpec]
    faults: list[FaultSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique")
        servers = [srv.name for s in self.sites for srv in s.servers]
        if len(set(servers)) != len(servers):
            raise ValueError("server names must be unique across sites")
        for site in self.sites:
            for partner in site.replication_partners:
                if partner not in names or partner == site.name:
                    raise ValueError(f"site {site.name}: unknown replication partner {partner!r}")
            paths = [(g.domain.lower(), g.name.lower()) for g in site.groups]
            if len(set(paths)) != len(paths):
                raise ValueError(f"site {site.name}: group names must be unique within a domain")
        return self

    def start_ms(self) -> int:
        start = self.clock.start or datetime.now(UTC)
        return int(start.timestamp() * 1000)


def load_scenario(source: dict[str, Any] | str | Path | Scenario) -> Scenario:
    """Accept a Scenario, a dict, or a YAML/JSON file path."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, dict):
        return Scenario.model_validate(source)
    data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a scenario must be a mapping")
    return Scenario.model_validate(data)
