"""What a service tells about itself: its logs, who may read its /metrics, and where its
traces go."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# The orchestrator's API roles, least to most; metrics_role names the least that reads /metrics.
MetricsRole = Literal["viewer", "operator", "approver", "admin"]


class ObservabilitySettings(BaseModel):
    """Logs, metrics access and tracing."""

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
