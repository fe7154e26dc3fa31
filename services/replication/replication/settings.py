"""Settings of the replication service (env prefix CERTROTATE_REPLICATION_, then CERTROTATE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from certrotate_shared.internal_api import InternalApiSettings
from certrotate_shared.record_retention import retention_days_field, retention_interval_field
from certrotate_shared.work_settings import (
    work_concurrency_field,
    work_lease_field,
    work_poll_field,
)


class Settings(InternalApiSettings):
    service = "replication"
    model_config = SettingsConfigDict(
        env_prefix="CERTROTATE_REPLICATION_", extra="ignore", validate_default=True
    )
    renamed_settings = {
        "worker_poll_real_s": "work_poll_s",
        "worker_concurrency": "work_concurrency",
        "lease_s": "work_lease_s",
    }

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
    work_poll_s: float = work_poll_field(0.25, work="replication operations")
    work_concurrency: int = work_concurrency_field(8, work="Replication operations")
    work_lease_s: float = work_lease_field(120.0, work="a replication operation")
    hostops_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="How long (seconds) one host operation may take (WinRM scripts can take minutes).",
    )
    retention_days: float = retention_days_field()
    retention_interval_s: float = retention_interval_field()
