"""Where a service keeps its state and exchanges its messages: its database, and Kafka (with
the brokers' TLS or SASL security) or the durable in-process log of embedded mode."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from certrotate_shared.message_retention import (
    check_inbox_retention_days,
    inbox_retention_days_field,
)


class MessagingSettings(BaseModel):
    """The database and the message transport of one service."""

    service: ClassVar[str]

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
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description=(
            "PostgreSQL: the connections this process's transactions share (its outbox relay "
            "and LISTEN hold one more each). More transactions at once wait for a free one "
            "(up to 30 s) rather than open and close extra connections. Every replica of every "
            "service holds up to this many: keep the sum under the server's max_connections."
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
    inbox_retention_days: float = inbox_retention_days_field()

    @field_validator("inbox_retention_days")
    @classmethod
    def _inbox_outlasts_the_broker(cls, days: float) -> float:
        return check_inbox_retention_days(days)

    def schema_name(self) -> str:
        return self.database_schema or self.service.replace("-", "_")

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
