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

    admin_token: SecretStr = Field(
        default=SecretStr(""),
        description="The first admin API token; more tokens are created through POST /v1/tokens.",
    )
    internal_token: SecretStr = Field(
        default=SecretStr(""),
        description="Sent to the certificates service's internal API (X-Certrotate-Internal-Token).",
    )
    certificates_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Base URL of the certificates service's HTTP API.",
    )
    client_monitor_url: str = Field(
        default="http://127.0.0.1:8083",
        description="Base URL of the client-monitor service's HTTP API.",
    )
    stale_horizon_days: float = Field(
        default=30.0,
        description=(
            "Default for rotations that do not set it: clients not seen for longer than this "
            "(days) are listed, not waited on."
        ),
    )
    max_wait_days: float = Field(
        default=14.0,
        description=(
            "Default for rotations that do not set it: longest wait for a policy to propagate"
            " (days) before the rotation pauses for a decision."
        ),
    )
    exposure_limit_days: float = Field(
        default=21.0,
        description=(
            "Default for rotations that do not set it: longest time verification may stay off"
            " (days) before an alert."
        ),
    )
    retry_base_seconds: float = Field(
        default=30.0,
        description=(
            "First pause (clock seconds) before a failed step is retried; grows exponentially"
            " with jitter."
        ),
    )
    retry_max_seconds: float = Field(
        default=3600.0,
        description="Longest pause (clock seconds) between retries of a failed step.",
    )
    retry_max_attempts: int = Field(
        default=5,
        description="Retries of a failed step before the rotation pauses for a decision.",
    )
    answer_deadline_sepm_seconds: float = Field(
        300.0,
        gt=0,
        description=(
            "How long (real seconds: under an accelerated clock they count as that many times"
            " more clock time, since workers do not run faster) a rotation waits for a "
            "worker's answer before it re-sends the same command (same idempotency key): SEPM"
            " REST steps (inspect, verification set/check)."
        ),
    )
    answer_deadline_host_operation_seconds: float = Field(
        1800.0,
        gt=0,
        description=(
            "The same for host operations (break replication, install and restart, rollback):"
            " the host-operation timeout (300 s per call, three service restarts) plus a "
            "margin."
        ),
    )
    answer_deadline_manual_seconds: float = Field(
        86400.0,
        gt=0,
        description=(
            "The same for host operations a person does (manual driver: an open operator task)."
        ),
    )
    answer_deadline_restore_replication_seconds: float = Field(
        4200.0,
        gt=0,
        description=(
            "The same for restoring replication: the replication service's restore timeout "
            "(3600 s) plus a margin."
        ),
    )
    answer_resends: int = Field(
        2,
        ge=0,
        le=20,
        description="Re-sends after a missed deadline before the rotation pauses for a decision.",
    )
    max_reenable_loops: int = Field(
        3,
        ge=1,
        le=20,
        description=(
            "Times the check before the swap may find verification back on and send the "
            "rotation back to step 2 before it pauses for a decision."
        ),
    )
    rehearsal: bool = Field(
        default=False,
        description=(
            "A rehearsal against the twin: sites may use the `twin` host-operations driver "
            "(the simulator's host agent). Off in production; `--twin` rehearsals and the "
            "demo turn it on."
        ),
    )
    require_approval: bool = Field(
        default=False,
        description="Every rotation waits for an approver, whatever the request says.",
    )
    max_orphan_risk_budget: int | None = Field(
        None,
        ge=0,
        description=(
            "The largest orphan-risk budget (clients that may be cut off) any request may "
            "set; None: no cap beyond the approver's judgement."
        ),
    )
    operator_orphan_risk_budget: int = Field(
        0,
        ge=0,
        description=(
            "The budget an operator may set without the approver role (0: any budget needs one)."
        ),
    )
    min_validity_days: int = Field(
        default=30,
        description="A new certificate must stay valid at least this many days to be accepted.",
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        description="Largest accepted request body (a certificate bundle travels base64 inside).",
    )
    timer_poll_seconds: float = Field(
        default=1.0,
        description="How often (real seconds) the timer loop looks for due timers at the latest.",
    )

    callback_allowed_networks: list[str] = Field(
        default=[],
        description=(
            "Callbacks to subscribers: private, loopback, link-local and metadata addresses "
            "are refused unless one of these networks (CIDR, a JSON list) holds them."
        ),
    )
    callback_allow_http: bool = Field(
        default=False,
        description="Plain-http callback URLs (https only by default).",
    )
    callback_ca_file: str = Field(
        default="",
        description=(
            "PEM file of CA certificates trusted for https callbacks besides the system's (an"
            " internal ITSM tool behind a corporate CA)."
        ),
    )
    callback_retry_base_seconds: float = Field(
        30.0,
        gt=0,
        description=(
            "First pause (clock seconds) before a failed callback is retried; grows exponentially."
        ),
    )
    callback_retry_max_seconds: float = Field(
        3600.0,
        gt=0,
        description="Longest pause (clock seconds) between retries of a failed callback.",
    )
    callback_retry_window_hours: float = Field(
        24.0,
        ge=24.0,
        description=(
            "A failed callback is retried for this many hours after its first attempt (at "
            "least 24), then marked failed (it can be redelivered)."
        ),
    )
    callback_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="How long a subscriber may take to answer one callback (real seconds).",
    )
    callback_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="How often (real seconds) the delivery loop looks for due callbacks when idle.",
    )

    auth_failure_limit: int = Field(
        10,
        ge=1,
        description=(
            "A client address whose API tokens failed this many times within the window (real"
            " seconds) is answered 429 with Retry-After until fewer than this many failures are"
            " left in the window. The failures are counted in the database, so replicas share"
            " the count: with N replicas an address gets at most this + N - 1 attempts per "
            "window (a replica learns the count at the address's next failure through it)."
        ),
    )
    auth_failure_window_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "The window of auth_failure_limit (real seconds; the client address is the TCP "
            "peer's, so behind a proxy every client shares the proxy's)."
        ),
    )
    auth_cache_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description=(
            "How long (real seconds) a replica keeps an API token it verified, so polls do not"
            " look it up each time. A token revoked through a replica is refused by it at once;"
            " by the other replicas within this time. 0 looks every token up every time."
        ),
    )
    retention_days: float = Field(
        30.0,
        gt=0,
        description=(
            "What a rotation leaves behind (the verification values it recorded, the "
            "certificate backups on its servers, deleted from the hosts, and a campaign's "
            "unused bundles) is kept this many days after it ended, then purged; the "
            "replication and client-monitor services are told then and purge their records "
            "on their own retention_days. A backup a rollback by hand may still need (a server "
            "left between certificates) and the at-risk lists an approver accepted are kept. "
            "A live rotation's or campaign's bundle never expires."
        ),
    )
    idempotency_key_days: float = Field(
        30.0,
        ge=7,
        allow_inf_nan=False,
        description=(
            "The Idempotency-Key of a POST that started a rotation (POST /v1/rotations, and "
            "the rotations a campaign starts) is remembered while the rotation is live and "
            "this many days after it ended (real days, also under an accelerated clock): "
            "until then the same key with the same body answers 200 with that rotation, "
            "however late an ITSM retries. Then the retention job forgets it, and the same "
            "request would start a new rotation. At least 7 (a retry queue held over a long "
            "weekend or an outage); a campaign's own key stays with the campaign."
        ),
    )
    uploaded_bundle_days: float = Field(
        35.0,
        gt=0,
        description=(
            "A bundle uploaded with POST /v1/bundles is destroyed this many days after its "
            "last use (or its upload, if never used)."
        ),
    )
    retention_interval_seconds: float = Field(
        3600.0,
        gt=0,
        description=(
            "Clock seconds between two runs of the retention job (one replica runs it at a time)."
        ),
    )

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
