"""HTTP request bodies (kept apart from the Kafka messages)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.domain.state import (
    AnswerDeadlines,
    MaintenanceWindow,
    RetryPolicy,
    RotationOptions,
)
from orchestrator.service_layer.management_servers import REQUIRED_TLS_PORTS
from orchestrator.service_layer.preflight import BundleReference, Certificate, CertificateUpload


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The stored options ignore unknown fields (old states stay readable); a request must not:
# a typo such as `require_aproval` would silently drop the approval gate.
class RetryPolicyIn(RetryPolicy):
    model_config = ConfigDict(extra="forbid")


class MaintenanceWindowIn(MaintenanceWindow):
    model_config = ConfigDict(extra="forbid")


class AnswerDeadlinesIn(AnswerDeadlines):
    model_config = ConfigDict(extra="forbid")


class RotationOptionsIn(RotationOptions):
    model_config = ConfigDict(extra="forbid")

    maintenance_window: MaintenanceWindowIn | None = None
    retry: RetryPolicyIn = Field(default_factory=RetryPolicyIn)
    # Narrower than the base's dict[str, RetryPolicy] on purpose (unknown fields refused);
    # the API only reads it, so dict's invariance does not bite.
    retry_per_step: dict[str, RetryPolicyIn] = Field(default_factory=dict)  # type: ignore[assignment]
    answer_deadlines: AnswerDeadlinesIn = Field(default_factory=AnswerDeadlinesIn)

    def stored(self) -> RotationOptions:
        """The options as the saga keeps them; fields left out stay unset (defaults apply)."""
        return RotationOptions.model_validate(self.model_dump(exclude_unset=True))


class CertificateUploadIn(_Body):
    format: Literal["pkcs12", "jks", "pem"]
    data_b64: str = Field(
        min_length=1, description="The keystore or PEM certificate, base64", repr=False
    )
    password: str | None = Field(
        None, description="Keystore password; forwarded, never stored", repr=False
    )
    key_b64: str | None = Field(
        None, description="PEM private key, base64 (format pem only)", repr=False
    )


BUNDLE_ID = Field(
    None,
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9_-]+$",
    description="A bundle uploaded before (POST /v1/bundles), instead of an inline certificate",
)


class BundleIdIn(_Body):
    bundle_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="A bundle uploaded before (POST /v1/bundles)",
    )  # fmt: skip


def certificate_of(
    upload: CertificateUploadIn | BundleIdIn | None, bundle_id: str | None = None
) -> Certificate:
    """What the service layer pre-flights: the inline upload or the uploaded bundle's id."""
    if isinstance(upload, BundleIdIn):
        return BundleReference(upload.bundle_id)
    if upload is not None:
        return CertificateUpload(upload.format, upload.data_b64, upload.password, upload.key_b64)
    assert bundle_id is not None, "validated: a certificate or a bundle_id"
    return BundleReference(bundle_id)


# The rule of one_certificate, stated for clients of RotationIn.
ONE_CERTIFICATE: list[Any] = [
    {"required": ["certificate"], "properties": {"certificate": {"type": "object"}}},
    {"required": ["bundle_id"], "properties": {"bundle_id": {"type": "string"}}},
]


def one_certificate(certificate: object, bundle_id: str | None) -> None:
    if (certificate is None) == (bundle_id is None):
        raise ValueError("give either certificate (inline) or bundle_id (uploaded before)")


class RotationIn(_Body):
    # The rule of the validator below, stated for clients.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": ONE_CERTIFICATE,
            "if": {
                "required": ["options"],
                "properties": {
                    "options": {
                        "required": ["orphan_risk_budget"],
                        "properties": {"orphan_risk_budget": {"exclusiveMinimum": 0}},
                    }
                },
            },
            "then": {
                "required": ["orphan_risk_budget_reason"],
                "properties": {"orphan_risk_budget_reason": {"type": "string", "pattern": r"\S"}},
            },
        },
    )
    site: str = Field(min_length=1)
    certificate: CertificateUploadIn | None = None
    bundle_id: str | None = BUNDLE_ID
    options: RotationOptionsIn = Field(default_factory=RotationOptionsIn)
    change_id: str | None = Field(None, max_length=200)
    orphan_risk_budget_reason: str | None = Field(
        None, description="Required when options.orphan_risk_budget > 0"
    )

    @model_validator(mode="after")
    def _budget_has_a_reason(self) -> RotationIn:
        one_certificate(self.certificate, self.bundle_id)
        if (
            self.options.orphan_risk_budget > 0
            and not (self.orphan_risk_budget_reason or "").strip()
        ):
            raise ValueError("an orphan-risk budget above 0 needs orphan_risk_budget_reason")
        return self


class PauseIn(_Body):
    reason: str = ""


class CancelIn(_Body):
    reason: str = Field(min_length=1)


class ApproveIn(_Body):
    note: str = ""


REASON_NEEDED = ("proceed", "abort", "compensate", "mark_done")
# A reason with something in it besides blanks (what the validator below checks).
NOT_BLANK = r"\S"


class DecideIn(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"decision": {"enum": list(REASON_NEEDED)}}},
            "then": {"required": ["reason"], "properties": {"reason": {"pattern": NOT_BLANK}}},
        },
    )
    decision: Literal["extend", "proceed", "abort", "retry", "compensate", "mark_done"]
    reason: str = ""
    change_id: str | None = None
    extend_days: float | None = Field(None, gt=0, le=365)

    @model_validator(mode="after")
    def _reason_when_needed(self) -> DecideIn:
        if self.decision in REASON_NEEDED and not (self.reason.strip()):
            raise ValueError(f"a {self.decision} decision needs a reason")
        return self


class TokenIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "operator", "approver", "admin"]
    expires_at: AwareDatetime | None = Field(
        None, description="Refused (401) from this instant on; with a time zone"
    )


class SepmCredentialsIn(_Body):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1, repr=False)
    domain: str = ""


class HostOpsCredentialsIn(_Body):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1, repr=False)


class HostOpsIn(_Body):
    driver: Literal["twin", "winrm", "manual"]
    endpoint: str | None = None


SITE_NAME = r"^[A-Za-z0-9._-]{1,200}$"
# A DNS name (RFC 1123 labels) or an IPv4 address; IPv6 literals are checked separately.
HOSTNAME = (
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
SiteName = Annotated[str, Field(pattern=SITE_NAME, max_length=200)]
SiteTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
HostName = Annotated[str, Field(pattern=HOSTNAME, max_length=253)]
# SEPM's listeners: 8443 clients (HTTPS), 443 clients (IIS/Apache), 8446 REST API and console,
# 8445 reporting (where used), 8014 clients over HTTP (no certificate).
SepmPort = Literal["8443", "443", "8446", "8445", "8014"]
PortNumber = Annotated[int, Field(ge=1, le=65535)]


# The SEPM account's password travels to api_url: https only (the service checks it too).
HTTPS_URL = r"^[Hh][Tt][Tt][Pp][Ss]://[^/?#\s]+"


class SiteIn(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=SITE_NAME)
    api_url: str = Field(
        min_length=1,
        description="e.g. https://sepm-a1:8446/sepm/api/v1",
        # Stated, not enforced here: the service refuses it with its own code (https_required).
        json_schema_extra={"pattern": HTTPS_URL},
    )
    version: str = Field(min_length=1)
    replication_partners: list[SiteName] = Field(default_factory=list, max_length=100)
    trusted_certificates_pem: list[str] = Field(default_factory=list)
    host_ops: HostOpsIn
    tags: list[SiteTag] = Field(
        default_factory=list, max_length=50, description='Labels a campaign targets as "tag:<tag>"'
    )
    maintenance_window: MaintenanceWindowIn | None = Field(
        None, description="The site's own window, in its time zone: campaigns start and swap in it"
    )
    sepm_credentials: SepmCredentialsIn | None = None
    host_ops_credentials: HostOpsCredentialsIn | None = None


class SiteTagsIn(_Body):
    tags: list[SiteTag] = Field(
        max_length=50, description='Labels a campaign targets as "tag:<tag>"'
    )


def _ports_required(schema: dict[str, Any]) -> None:
    schema["required"] = [*schema.get("required", []), "ports"]
    schema["properties"]["ports"]["required"] = list(REQUIRED_TLS_PORTS)


class ServerIn(_Body):
    # Left out, the ports are refused with their own code (tls_ports_missing) and an example,
    # so the schema states the rule rather than the model enforcing it.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ports_required)
    name: str = Field(min_length=1, max_length=200, pattern=SITE_NAME)
    site: str = Field(min_length=1, max_length=200, pattern=SITE_NAME)
    address: str = Field(
        min_length=1,
        max_length=253,
        description="How certrotate reaches the host (name or IP)",
        json_schema_extra={"anyOf": [{"pattern": HOSTNAME}, {"format": "ipv6"}]},
    )
    hostnames: list[HostName] = Field(
        default_factory=list,
        max_length=50,
        description="The names clients use to reach this server; the certificate must carry them",
    )
    version: str = Field(min_length=1, max_length=50)
    ports: dict[SepmPort, PortNumber] = Field(
        default_factory=dict,
        description='SEPM listener -> port: {"8443": 8443, "443": 443, "8446": 8446} at least',
    )

    @field_validator("address")
    @classmethod
    def _host_or_ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not re.fullmatch(HOSTNAME, value):
                raise ValueError("must be a DNS name or an IP address") from None
        return value


class TaskConfirmIn(_Body):
    note: str = ""
