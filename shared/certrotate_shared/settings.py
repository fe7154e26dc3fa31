"""Settings per service: env prefix CERTROTATE_<SERVICE>_, falling back to CERTROTATE_.

What every service has is one concept per module (messaging, secrets, delivery, listener,
observability); this module puts them together, reads the environment and checks the rules
that span them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from certrotate_shared.clock import Clock, make_clock
from certrotate_shared.delivery_settings import DeliverySettings
from certrotate_shared.event_loop import EventLoopChoice
from certrotate_shared.listener_settings import ListenerSettings
from certrotate_shared.messaging_settings import MessagingSettings
from certrotate_shared.observability_settings import ObservabilitySettings
from certrotate_shared.renamed_settings import RenamedVariables
from certrotate_shared.secret_settings import SecretSettings


class SettingsError(RuntimeError):
    """Settings a person must fix; the message names each environment variable."""


# pydantic lists inherited fields from the last base to the first: this order keeps the
# configuration reference in the order a person sets a service up (database first, clock last).
class ServiceSettings(
    BaseSettings,
    ObservabilitySettings,
    ListenerSettings,
    DeliverySettings,
    SecretSettings,
    MessagingSettings,
):
    """What every service needs: where its database, broker and secrets are."""

    service: ClassVar[str] = "service"
    # {old field name: new field name}: the old variables are still read (renamed_settings).
    renamed_settings: ClassVar[Mapping[str, str]] = {}
    # hide_input_in_errors: an invalid master key or token must not be echoed in the error.
    model_config = SettingsConfigDict(
        extra="ignore", validate_default=True, hide_input_in_errors=True
    )

    event_loop: EventLoopChoice = Field(
        default="auto",
        description=(
            "The process's event loop: auto (uvloop where installed, which is everywhere but "
            "Windows; else asyncio's), uvloop, or asyncio (asyncio's own loop, slower)."
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
    def _pairs(self) -> ServiceSettings:
        prefix = env_prefix(self.service)
        self._check_tls_pairs(prefix)
        self._check_kafka_security(prefix)
        return self

    def clock(self) -> Clock:
        return make_clock(self.clock_speed, self.clock_real_origin_ms, self.clock_sim_origin_ms)


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
