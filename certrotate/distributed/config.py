"""What a distributed stack is made of: its services, ports, schemas and secrets."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certrotate.stack import ClockSync, stack_secrets

SERVICES: tuple[str, ...] = ("replication", "certificates", "client-monitor", "orchestrator")
PACKAGES: dict[str, str] = {
    "orchestrator": "orchestrator",
    "replication": "replication",
    "certificates": "certificates",
    "client-monitor": "client_monitor",
}
# The orchestrator's defaults point at 8081 (certificates) and 8083 (client-monitor).
DEFAULT_PORTS: dict[str, int] = {
    "orchestrator": 8080,
    "certificates": 8081,
    "replication": 8082,
    "client-monitor": 8083,
}
WORKERS: tuple[str, ...] = ("replication", "certificates", "client-monitor")


@dataclass
class DistributedConfig:
    """What the four processes need; secrets are passed to them in their environment only."""

    database_url: str
    master_key: str = field(repr=False)
    internal_token: str = field(repr=False)
    admin_token: str = field(repr=False)
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "certrotate"
    # Each service keeps its tables in schema <schema_prefix><service> (client_monitor for
    # the client-monitor); a prefix keeps test runs or several stacks apart in one database.
    schema_prefix: str = ""
    vault_schema: str = "vault"
    # The vault's database; the services' database when empty.
    vault_url: str = ""
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    clock: ClockSync | None = None
    log_level: str = "INFO"
    log_dir: Path = Path("var/log")
    # Extra settings per service, by field name: {"orchestrator": {"timer_poll_seconds": 0.2}}.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The environment the processes inherit (default: this process's, so CERTROTATE_*
    # variables an operator set reach the services; what this config sets wins).
    base_env: Mapping[str, str] | None = None
    python: str = sys.executable
    cwd: Path | None = None

    @classmethod
    def from_environment(cls, data_dir: Path, **overrides: Any) -> DistributedConfig:
        """Secrets from the environment or ``data_dir/secrets.json``; infrastructure from
        CERTROTATE_DATABASE_URL, CERTROTATE_KAFKA_BOOTSTRAP and CERTROTATE_TOPIC_PREFIX."""
        keys = stack_secrets(data_dir)
        values: dict[str, Any] = {
            "database_url": os.environ.get(
                "CERTROTATE_DATABASE_URL",
                "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate",
            ),
            "kafka_bootstrap": os.environ.get("CERTROTATE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            "topic_prefix": os.environ.get("CERTROTATE_TOPIC_PREFIX", "certrotate"),
            "master_key": keys["master_key"],
            "internal_token": keys["internal_token"],
            "admin_token": keys["admin_token"],
            "log_dir": data_dir / "log",
        }
        return cls(**(values | overrides))

    def schema(self, service: str) -> str:
        return f"{self.schema_prefix}{service.replace('-', '_')}"

    def schemas(self) -> list[str]:
        """Every schema this stack writes to (the vault's last)."""
        return [self.schema(name) for name in SERVICES] + [self.vault_schema]
