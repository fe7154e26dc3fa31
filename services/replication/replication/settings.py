"""Settings of the replication service (env prefix CERTROTATE_REPLICATION_, then CERTROTATE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from certrotate_shared.internal_api import InternalApiSettings
from certrotate_shared.record_retention import retention_days_field, retention_interval_field


class Settings(InternalApiSettings):
    service = "replication"
    model_config = SettingsConfigDict(
        env_prefix="CERTROTATE_REPLICATION_", extra="ignore", validate_default=True
    )

    restore_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "How long a restored partnership may take to replicate successfully (clock seconds)."
        ),
    )
    restore_poll_initial_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "First pause (clock seconds) between replication status polls while restoring; "
            "grows to restore_poll_max_s."
        ),
    )
    restore_poll_max_s: float = Field(
        default=120.0,
        gt=0,
        description="Longest pause (clock seconds) between replication status polls while restoring.",
    )
    worker_poll_real_s: float = Field(
        default=0.25,
        gt=0,
        description="The worker looks for due operations at least this often (real seconds).",
    )
    worker_concurrency: int = Field(
        default=8,
        ge=1,
        description="Operations worked on at once by one replica.",
    )
    lease_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "A replica's claim on an operation (real seconds); a crashed replica's work moves"
            " after it."
        ),
    )
    hostops_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="How long (seconds) one host operation may take (WinRM scripts can take minutes).",
    )
    retention_days: float = retention_days_field()
    retention_interval_s: float = retention_interval_field()
