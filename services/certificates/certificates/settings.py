"""Settings of the certificates service (env prefix CERTROTATE_CERTIFICATES_)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from certrotate_shared.settings import ServiceSettings
from certrotate_shared.work_settings import (
    work_concurrency_field,
    work_lease_field,
    work_poll_field,
)

_PLACEHOLDER_TOKENS = {"", "changeme", "change-me", "secret", "default", "dev", "test", "token"}
DAY = 86400.0


class Settings(ServiceSettings):
    service = "certificates"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_CERTIFICATES_", extra="ignore")
    renamed_settings = {
        "job_poll_interval_s": "work_poll_s",
        "job_lease_s": "work_lease_s",
        "max_concurrent_jobs": "work_concurrency",
    }

    internal_token: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret the orchestrator sends in X-Certrotate-Internal-Token.",
    )
    max_bundle_request_bytes: int = Field(
        default=1_048_576,
        gt=0,
        description="Largest accepted POST /internal/v1/bundles body (JSON with base64 inside).",
    )
    min_validity_days: int = Field(
        default=30,
        ge=0,
        description="Used when an upload does not say how many days of validity it needs.",
    )
    bundle_ttl_s: float = Field(
        default=35 * DAY,
        gt=0,
        description=(
            "Uploads the orchestrator never held (a request that failed after pre-flight) are"
            " destroyed after this long. Held ones (named by a live rotation, campaign or "
            "upload) never expire here: the orchestrator's retention job deletes them."
        ),
    )
    purge_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "How often (seconds) the store looks for bundles past the TTL, messages past the "
            "inbox's window and jobs that finished after their rotation's records were purged "
            "(backup deletions among them; forgotten with their answers)."
        ),
    )
    verify_timeout_s: float = Field(
        default=60.0,
        ge=0,
        description=(
            "After the restarts: how long (seconds) to keep probing until every TLS port "
            "serves the new certificate (services take a while to come up)."
        ),
    )
    verify_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="Pause (seconds) between two probes of the TLS ports after the restarts.",
    )
    probe_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long (seconds) one TLS probe of one port may take.",
    )
    work_poll_s: float = work_poll_field(0.5, work="certificate jobs")
    work_lease_s: float = work_lease_field(60.0, work="a certificate job")
    work_concurrency: int = work_concurrency_field(8, work="Certificate jobs")

    @field_validator("internal_token")
    @classmethod
    def _real_token(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw.strip().lower() in _PLACEHOLDER_TOKENS:
            raise ValueError(
                "an internal token is required (the orchestrator sends it); generate one with "
                "`certrotate keygen` and give both services the same value"
            )
        if len(raw) < 16:
            raise ValueError("the internal token must be at least 16 characters")
        return value
