"""Settings per service: env prefix CERTROTATE_<SERVICE>_, falling back to CERTROTATE_."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from certrotate_shared.clock import Clock, make_clock
from certrotate_shared.renamed_settings import RenamedVariables

# Keys that appear in docs and examples; a service must never run with one of them.
_PLACEHOLDER_KEYS = {"", "changeme", "change-me", "secret", "default", "dev", "test"}


def _check_master_key(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    if raw.strip().lower() in _PLACEHOLDER_KEYS:
        raise ValueError(
            "a master key is required: generate one with `certrotate keygen` and set it"
        )
    try:
        key = base64.urlsafe_b64decode(raw.encode())
    except (binascii.Error, ValueError):
        raise ValueError("the master key must be base64 (urlsafe) of 32 bytes") from None
    if len(key) != 32:
        raise ValueError(f"the master key must decode to 32 bytes, not {len(key)}")
    return value


# The orchestrator's API roles, least to most; metrics_role names the least that reads /metrics.
MetricsRole = Literal["viewer", "operator", "approver", "admin"]


class SettingsError(RuntimeError):
    """Settings a person must fix; the message names each environment variable."""


class ServiceSettings(BaseSettings):
    """What every service needs: where its database, broker and secrets are."""

    service: ClassVar[str] = "service"
    # {old field name: new field name}: the old variables are still read (renamed_settings).
    renamed_settings: ClassVar[Mapping[str, str]] = {}
    # hide_input_in_errors: an invalid master key or token must not be echoed in the error.
    model_config = SettingsConfigDict(
        extra="ignore", validate_default=True, hide_input_in_errors=True
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///var/certrotate.db",
        description=(
            "This service's database: postgresql://... (distributed) or sqlite:///path (embedded)."
        ),
    )
    database_schema: str = Field(
        default="",
        description=(
            "PostgreSQL schema owned by this service (database per service on one server); "
            "empty = the service's name."
        ),
    )
    transport: Literal["kafka", "local"] = Field(
        default="kafka",
        description="kafka (distributed) or local (the durable in-process log of embedded mode).",
    )
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers, host:port[,host:port].",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description=(
            "How the Kafka clients (producer, consumer, admin) reach the brokers: PLAINTEXT, "
            "SSL, SASL_PLAINTEXT or SASL_SSL."
        ),
    )
    kafka_ssl_ca_file: str = Field(
        default="",
        description=(
            "SSL/SASL_SSL: PEM CA bundle that issued the brokers' certificates (empty = the "
            "system's trust store); the brokers' host names are checked."
        ),
    )
    kafka_ssl_cert_file: str = Field(
        default="",
        description=(
            "SSL/SASL_SSL: PEM client certificate, for brokers that require mTLS (set with "
            "kafka_ssl_key_file)."
        ),
    )
    kafka_ssl_key_file: str = Field(
        default="",
        description="SSL/SASL_SSL: PEM private key of kafka_ssl_cert_file (set both or neither).",
    )
    kafka_sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="",
        description="SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    kafka_sasl_username: str = Field(
        default="",
        description="SASL_*: the account certrotate signs in to the brokers with.",
    )
    kafka_sasl_password_file: str = Field(
        default="",
        description=(
            "SASL_*: a file holding the account's password (the password itself is never put "
            "in the environment)."
        ),
    )
    topic_prefix: str = Field(
        default="certrotate",
        description="Topics are <prefix>.<service>.commands, <prefix>.events and <prefix>.dlq.",
    )
    local_log_path: str = Field(
        default="var/transport.db",
        description="Path of the durable in-process log used by the local (embedded) transport.",
    )
    vault_url: str = Field(
        default="sqlite+aiosqlite:///var/vault.db",
        description=(
            "Where the vault keeps sealed SEPM and WinRM accounts (same URL for every service)."
        ),
    )
    vault_schema: str = Field(
        default="vault",
        description="PostgreSQL schema of the vault (shared by every service that reads secrets).",
    )
    master_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "32 random bytes, base64 (`certrotate keygen`); seals secrets at rest. Same for all."
        ),
    )
    previous_master_keys: list[SecretStr] = Field(
        default=[],
        description=(
            "Master keys replaced by master_key (a JSON list, newest first): what they sealed"
            " stays readable until `certrotate vault rekey` has sealed it again under the "
            "current key."
        ),
    )
    max_delivery_attempts: int = Field(
        default=5,
        ge=1,
        description=(
            "Attempts at a message (or a worker's long-running job) that fails with a "
            "permanent or unknown error, before the command is answered with its typed "
            "failure event (a message without one is parked in the DLQ, and that is reported "
            "to its saga). Transient errors (network, timeouts, SEPM 5xx/429, database or "
            "vault unavailable) are not counted: they are waited out with back-off."
        ),
    )
    retry_base_delay_s: float = Field(
        default=0.2,
        gt=0,
        description=(
            "First pause (seconds) between attempts at a failing message; doubles with each "
            "attempt."
        ),
    )
    transient_retry_max_delay_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest pause (seconds) before a message held by a transient error is tried "
            "again; its partition waits meanwhile, other partitions flow."
        ),
    )
    consumer_restart_base_s: float = Field(
        default=1.0,
        gt=0,
        description=(
            "First pause (seconds) before a consumer that stopped on an error (a failed "
            "offset commit, a lost broker) is restarted; doubles with each failure. /readyz "
            "fails while it is down."
        ),
    )

    consumer_restart_max_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest pause (seconds) between restarts of a consumer that keeps failing.",
    )
    sepm_connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long (real seconds) connecting to a SEPM REST API may take.",
    )
    sepm_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long (real seconds) a SEPM REST answer may take once connected.",
    )
    instance_id: str = Field(
        default="",
        description=(
            "Identity of this replica in the leases of long-running work; empty = host name,"
            " process id and a random suffix."
        ),
    )
    http_host: str = Field(
        default="127.0.0.1",
        description=(
            "Where this service's HTTP API listens. Set per service with "
            "CERTROTATE_<SERVICE>_HTTP_HOST; keep 127.0.0.1 unless TLS is on or a proxy "
            "fronts it."
        ),
    )
    http_port: int = Field(
        default=0,
        description=(
            "The port this service's HTTP API listens on (0 = any free port). Set per service"
            " with CERTROTATE_<SERVICE>_HTTP_PORT."
        ),
    )
    http_tls_cert_file: str = Field(
        default="",
        description=(
            "TLS for this service's HTTP listener: PEM certificate with its chain. Empty "
            "(with http_tls_key_file) = plain HTTP."
        ),
    )
    http_tls_key_file: str = Field(
        default="",
        description="PEM private key of http_tls_cert_file (set both or neither).",
    )
    http_tls_client_ca_file: str = Field(
        default="",
        description=(
            "PEM CA bundle; when set, the listener requires a client certificate issued by it"
            " (mTLS)."
        ),
    )
    internal_tls_ca_file: str = Field(
        default="",
        description=(
            "PEM CA bundle that issued the other services' listener certificates, trusted "
            "when this service calls them over https (empty = the system's trust store)."
        ),
    )
    internal_tls_client_cert_file: str = Field(
        default="",
        description="Client certificate this service presents to services that require mTLS.",
    )
    internal_tls_client_key_file: str = Field(
        default="",
        description="PEM private key of internal_tls_client_cert_file.",
    )
    log_level: str = Field(
        default="INFO",
        description="DEBUG, INFO, WARNING or ERROR.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description=(
            "json (one JSON object per line, for a log pipeline), console (readable), or "
            "auto: console when stderr is a terminal, json otherwise (services started by "
            "`certrotate up`, systemd, Kubernetes)."
        ),
    )
    metrics_auth: Literal["internal_token", "open", "role"] = Field(
        default="internal_token",
        description=(
            'Who may read /metrics: "internal_token" (the internal token, sent as '
            "X-Certrotate-Internal-Token or as Authorization: Bearer, which Prometheus can "
            'send), "open" (anyone who reaches the port; for a scrape network of its own), or'
            ' "role" (the orchestrator only: an API token with at least metrics_role).'
        ),
    )
    otlp_endpoint: str = Field(
        default="",
        description=(
            "OpenTelemetry: where to export spans over OTLP/HTTP (e.g. http://otel-"
            "collector:4318/v1/traces). Empty = no tracing at all (nothing recorded)."
        ),
    )
    metrics_role: MetricsRole = Field(
        default="viewer",
        description=(
            "The least role an API token needs to read the orchestrator's /metrics "
            "(metrics_auth=role)."
        ),
    )
    clock_speed: float = Field(
        default=1.0,
        description="Accelerated time shared with the twin: simulated seconds per real second.",
    )
    clock_real_origin_ms: int | None = Field(
        default=None,
        description=(
            "The real instant (epoch ms) at which the simulated clock read clock_sim_origin_ms."
        ),
    )
    clock_sim_origin_ms: int | None = Field(
        default=None,
        description="The simulated instant (epoch ms) the clock read at clock_real_origin_ms.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared_env = EnvSettingsSource(settings_cls, env_prefix="CERTROTATE_")
        renamed = getattr(settings_cls, "renamed_settings", {})
        own_prefix = str(settings_cls.model_config.get("env_prefix") or "")
        return (
            init_settings,
            env_settings,
            RenamedVariables(settings_cls, own_prefix, renamed if own_prefix else {}),
            shared_env,
            RenamedVariables(settings_cls, "CERTROTATE_", renamed),
            file_secret_settings,
        )

    @field_validator("master_key")
    @classmethod
    def _real_key(cls, value: SecretStr) -> SecretStr:
        return _check_master_key(value)

    @field_validator("previous_master_keys")
    @classmethod
    def _real_previous_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            _check_master_key(key)
        return value

    @field_validator(
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
        "kafka_sasl_password_file",
        "http_tls_cert_file",
        "http_tls_key_file",
        "http_tls_client_ca_file",
        "internal_tls_ca_file",
        "internal_tls_client_cert_file",
        "internal_tls_client_key_file",
    )
    @classmethod
    def _readable_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _tls_pairs(self) -> ServiceSettings:
        prefix = env_prefix(self.service)
        if bool(self.http_tls_cert_file) != bool(self.http_tls_key_file):
            raise ValueError(
                f"set both {prefix}HTTP_TLS_CERT_FILE and {prefix}HTTP_TLS_KEY_FILE, or neither"
            )
        if self.http_tls_client_ca_file and not self.http_tls_cert_file:
            raise ValueError(
                f"{prefix}HTTP_TLS_CLIENT_CA_FILE (mTLS) needs TLS: set {prefix}HTTP_TLS_CERT_FILE"
                f" and {prefix}HTTP_TLS_KEY_FILE"
            )
        if self.internal_tls_client_key_file and not self.internal_tls_client_cert_file:
            raise ValueError(f"{prefix}INTERNAL_TLS_CLIENT_KEY_FILE needs its certificate file")
        self._check_kafka_security(prefix)
        return self

    def _check_kafka_security(self, prefix: str) -> None:
        protocol = self.kafka_security_protocol
        tls_files = self.kafka_ssl_ca_file or self.kafka_ssl_cert_file or self.kafka_ssl_key_file
        if tls_files and not protocol.endswith("SSL"):
            raise ValueError(
                f"{prefix}KAFKA_SSL_* files are set but {prefix}KAFKA_SECURITY_PROTOCOL is "
                f"{protocol}: use SSL or SASL_SSL"
            )
        if bool(self.kafka_ssl_cert_file) != bool(self.kafka_ssl_key_file):
            raise ValueError(
                f"set both {prefix}KAFKA_SSL_CERT_FILE and {prefix}KAFKA_SSL_KEY_FILE, or neither"
            )
        if protocol.startswith("SASL"):
            for field, value in (
                ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                ("KAFKA_SASL_PASSWORD_FILE", self.kafka_sasl_password_file),
            ):
                if not value:
                    raise ValueError(
                        f"{prefix}KAFKA_SECURITY_PROTOCOL={protocol} needs {prefix}{field}"
                    )

    def schema_name(self) -> str:
        return self.database_schema or self.service.replace("-", "_")

    def clock(self) -> Clock:
        return make_clock(self.clock_speed, self.clock_real_origin_ms, self.clock_sim_origin_ms)

    def master_key_bytes(self) -> bytes:
        return base64.urlsafe_b64decode(self.master_key.get_secret_value().encode())

    def previous_master_key_bytes(self) -> list[bytes]:
        return [
            base64.urlsafe_b64decode(k.get_secret_value().encode())
            for k in self.previous_master_keys
        ]


S = TypeVar("S", bound=ServiceSettings)


def env_prefix(service: str) -> str:
    """CERTROTATE_<SERVICE>_ for a service name like client-monitor."""
    return f"CERTROTATE_{service.upper().replace('-', '_')}_"


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings, turning validation errors into one message naming each variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = env_prefix(cls.service)
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            if not field:  # a rule over several fields: its message names the variables
                lines.append(f"  {error['msg'].removeprefix('Value error, ')}")
                continue
            lines.append(
                f"  {prefix}{field.upper()} (or CERTROTATE_{field.upper()}): {error['msg']}"
            )
        raise SettingsError(f"invalid {cls.service} settings:\n" + "\n".join(lines)) from None
