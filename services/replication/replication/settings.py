"""Settings of the replication service (env prefix CERTROTATE_REPLICATION_, then CERTROTATE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from certrotate_shared.internal_api import InternalApiSettings


class Settings(InternalApiSettings):
    service = "replication"
    model_config = SettingsConfigDict(
        env_prefix="CERTROTATE_REPLICATION_", extra="ignore", validate_default=True
    )

    # How long a restored partnership may take to replicate successfully (clock seconds).
    restore_timeout_s: float = Field(default=3600.0, gt=0)
    # Replication status polls back off from the first delay to the longest (clock seconds).
    restore_poll_initial_s: float = Field(default=5.0, gt=0)
    restore_poll_max_s: float = Field(default=120.0, gt=0)
    # The worker looks for due operations at least this often (real seconds).
    worker_poll_real_s: float = Field(default=0.25, gt=0)
    # Operations worked on at once by one replica.
    worker_concurrency: int = Field(default=8, ge=1)
    # A replica's claim on an operation (real seconds); a crashed replica's work moves after it.
    lease_s: float = Field(default=120.0, gt=0)
    # Identity of this replica for leases; empty = host name and process id.
    instance_id: str = ""
    # The SEPM connector (real seconds).
    sepm_connect_timeout_s: float = Field(default=5.0, gt=0)
    sepm_read_timeout_s: float = Field(default=30.0, gt=0)
    # Host operations (WinRM scripts can take minutes).
    hostops_timeout_s: float = Field(default=300.0, gt=0)
