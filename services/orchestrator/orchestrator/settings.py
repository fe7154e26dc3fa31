"""Orchestrator settings: env prefix CERTROTATE_ORCHESTRATOR_ (falling back to CERTROTATE_)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from certrotate_shared.settings import ServiceSettings

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "default", "dev", "test", "admin", "token"}


class Settings(ServiceSettings):
    service = "orchestrator"
    model_config = SettingsConfigDict(
        env_prefix="CERTROTATE_ORCHESTRATOR_", extra="ignore", validate_default=True
    )

    # The first admin API token; more tokens are created through POST /v1/tokens.
    admin_token: SecretStr = SecretStr("")
    # Sent to the certificates service's internal API (X-Certrotate-Internal-Token).
    internal_token: SecretStr = SecretStr("")
    # Base URLs of the certificates and client-monitor services' HTTP APIs.
    certificates_url: str = "http://127.0.0.1:8081"
    client_monitor_url: str = "http://127.0.0.1:8083"
    # Defaults for rotations that do not set them. Clients not seen for longer than the stale
    # horizon (days) are listed, not waited on.
    stale_horizon_days: float = 30.0
    # Longest wait for a policy to propagate (days) before the rotation pauses for a decision.
    max_wait_days: float = 14.0
    # Longest time verification may stay off (days) before an alert.
    exposure_limit_days: float = 21.0
    # Retries of a failed step: exponential back-off with jitter (clock seconds), then pause.
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    retry_max_attempts: int = 5
    # How long (real seconds: under an accelerated clock they count as that many times more
    # clock time, since workers do not run faster) a rotation waits for a worker's answer before it re-sends the same
    # command (same idempotency key): SEPM REST steps (inspect, verification set/check).
    answer_deadline_sepm_seconds: float = Field(300.0, gt=0)
    # The same for host operations (break replication, install and restart, rollback): the
    # host-operation timeout (300 s per call, three service restarts) plus a margin.
    answer_deadline_host_operation_seconds: float = Field(1800.0, gt=0)
    # The same for host operations a person does (manual driver: an open operator task).
    answer_deadline_manual_seconds: float = Field(86400.0, gt=0)
    # The same for restoring replication: the replication service's restore timeout (3600 s)
    # plus a margin.
    answer_deadline_restore_replication_seconds: float = Field(4200.0, gt=0)
    # Re-sends after a missed deadline before the rotation pauses for a decision.
    answer_resends: int = Field(2, ge=0, le=20)
    # Times the check before the swap may find verification back on and send the rotation back
    # to step 2 before it pauses for a decision.
    max_reenable_loops: int = Field(3, ge=1, le=20)
    # A rehearsal against the twin: sites may use the `twin` host-operations driver (the
    # simulator's host agent). Off in production; `--twin` rehearsals and the demo turn it on.
    rehearsal: bool = False
    # Every rotation waits for an approver, whatever the request says.
    require_approval: bool = False
    # The largest orphan-risk budget (clients that may be cut off) any request may set; None: no
    # cap beyond the approver's judgement.
    max_orphan_risk_budget: int | None = Field(None, ge=0)
    # The budget an operator may set without the approver role (0: any budget needs one).
    operator_orphan_risk_budget: int = Field(0, ge=0)
    # A new certificate must stay valid at least this many days to be accepted.
    min_validity_days: int = 30
    # Largest accepted request body (a certificate bundle travels base64 inside).
    max_body_bytes: int = 2 * 1024 * 1024
    # How often (real seconds) the timer loop looks for due timers at the latest.
    timer_poll_seconds: float = 1.0

    # Callbacks to subscribers: private, loopback, link-local and metadata addresses are refused
    # unless one of these networks (CIDR, a JSON list) holds them.
    callback_allowed_networks: list[str] = []
    # Plain-http callback URLs (https only by default).
    callback_allow_http: bool = False
    # PEM file of CA certificates trusted for https callbacks besides the system's (an internal
    # ITSM tool behind a corporate CA).
    callback_ca_file: str = ""
    # A failed callback is retried with exponential back-off (clock seconds) for this many hours
    # after its first attempt (at least 24), then marked failed (it can be redelivered).
    callback_retry_base_seconds: float = Field(30.0, gt=0)
    callback_retry_max_seconds: float = Field(3600.0, gt=0)
    callback_retry_window_hours: float = Field(24.0, ge=24.0)
    # How long a subscriber may take to answer one callback (real seconds).
    callback_timeout_seconds: float = Field(10.0, gt=0, le=60)
    # How often (real seconds) the delivery loop looks for due callbacks when idle.
    callback_poll_seconds: float = Field(1.0, gt=0)

    # A client address whose API tokens failed this many times within the window (real
    # seconds) is answered 429 with Retry-After until the oldest failure leaves the window.
    auth_failure_limit: int = Field(10, ge=1)
    # The window of auth_failure_limit (real seconds; the client address is the TCP peer's,
    # so behind a proxy every client shares the proxy's).
    auth_failure_window_seconds: float = Field(60.0, gt=0)
    # What a rotation leaves behind (the verification values it recorded, the records of the
    # certificate backups on its servers, a campaign's unused bundles) is kept this many days
    # after it ended, then purged. A live rotation's or campaign's bundle never expires.
    retention_days: float = Field(30.0, gt=0)
    # A bundle uploaded with POST /v1/bundles is destroyed this many days after its last use
    # (or its upload, if never used).
    uploaded_bundle_days: float = Field(35.0, gt=0)
    # Clock seconds between two runs of the retention job (one replica runs it at a time).
    retention_interval_seconds: float = Field(3600.0, gt=0)

    @field_validator("callback_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (e.g. 10.20.0.0/16)") from None
        return value

    @field_validator("admin_token")
    @classmethod
    def _real_admin_token(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip()
        if raw.lower() in _PLACEHOLDERS:
            raise ValueError("an admin token is required (a long random string, not a placeholder)")
        if len(raw) < 16:
            raise ValueError("the admin token must be at least 16 characters long")
        return value
