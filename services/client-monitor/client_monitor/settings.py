"""Settings of the client-monitor (env prefix CERTROTATE_CLIENT_MONITOR_, then CERTROTATE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from certrotate_shared.internal_api import InternalApiSettings
from certrotate_shared.record_retention import retention_days_field, retention_interval_field
from certrotate_shared.work_settings import work_lease_field, work_poll_field


class Settings(InternalApiSettings):
    service = "client-monitor"
    model_config = SettingsConfigDict(
        env_prefix="CERTROTATE_CLIENT_MONITOR_", extra="ignore", validate_default=True
    )
    renamed_settings = {"watch_poll_s": "work_poll_s", "lease_s": "work_lease_s"}

    scan_interval_s: float = Field(
        default=300.0,
        gt=0,
        description=(
            "Between incremental scans, in clock seconds (accelerated with the clock in a demo)."
        ),
    )
    min_scan_interval_real_s: float = Field(
        default=1.0,
        ge=0,
        description="...but never more often than this in real seconds, to spare SEPM's API.",
    )
    full_rescan_interval_s: float = Field(
        default=86_400.0,
        gt=0,
        description=(
            "A full scan now and then (clock seconds) refreshes online status and drops nothing."
        ),
    )
    full_rescan_min_real_s: float = Field(
        default=1800.0,
        ge=0,
        description=(
            "...but not more often than this in real seconds: a full scan of 1M clients is"
            " 1,000 SEPM calls (25 minutes of a 40-a-minute budget)."
        ),
    )
    page_size: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Clients asked of SEPM per page of a scan (1 to 10000; one SEPM call each).",
    )
    sepm_calls_per_minute: float = Field(
        default=40.0,
        ge=0,
        description=(
            "SEPM calls a minute this replica's watches of one site may make (SEPM answers 429"
            " past about 50 a minute in one known configuration; the rest is left to the other"
            " services). 0: no pacing."
        ),
    )
    sepm_call_burst: float = Field(
        default=10.0,
        ge=1,
        description="Calls a watch may make at once after a quiet spell, within that budget.",
    )
    last_update_overlap_ms: int = Field(
        default=300_000,
        ge=0,
        description=(
            "Incremental scans ask for lastUpdate >= (newest lastUpdateTime seen, or the"
            " previous pass's start if earlier, - overlap)."
        ),
    )
    progress_min_interval_real_s: float = Field(
        default=5.0,
        ge=0,
        description="PropagationProgressed is published at most this often (real seconds).",
    )
    progress_min_change_percent: float = Field(
        default=1.0,
        ge=0,
        description=(
            "PropagationProgressed is published only on a change of at least this many "
            "percentage points."
        ),
    )
    forecast_window_scans: int = Field(
        default=12,
        ge=2,
        description="Scans over which the check-in rate behind the completion forecast is measured.",
    )
    work_poll_s: float = work_poll_field(0.5, work="propagation watches")
    work_lease_s: float = work_lease_field(30.0, work="a propagation watch")
    advertise_url: str = Field(
        default="",
        description=(
            "The URL other replicas reach this one's API at: they forward reads of the "
            "watches it scans here. Empty: the address it listens on (with the host name when"
            " it listens on every interface). Behind Kubernetes, the pod's address "
            "(status.podIP)."
        ),
    )
    retention_days: float = retention_days_field()
    retention_interval_s: float = retention_interval_field()
