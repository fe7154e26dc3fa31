"""HTTP request bodies (kept apart from the Kafka messages)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.domain.state import RotationOptions


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class RotationIn(_Body):
    site: str = Field(min_length=1)
    certificate: CertificateUploadIn
    options: RotationOptions = Field(default_factory=RotationOptions)
    change_id: str | None = Field(None, max_length=200)
    orphan_risk_budget_reason: str | None = Field(
        None, description="Required when options.orphan_risk_budget > 0"
    )

    @model_validator(mode="after")
    def _budget_has_a_reason(self) -> RotationIn:
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


class DecideIn(_Body):
    decision: Literal["extend", "proceed", "abort", "retry", "compensate", "mark_done"]
    reason: str = ""
    change_id: str | None = None
    extend_days: float | None = Field(None, gt=0, le=365)

    @model_validator(mode="after")
    def _reason_when_needed(self) -> DecideIn:
        if self.decision in ("proceed", "abort", "compensate", "mark_done") and not (
            self.reason.strip()
        ):
            raise ValueError(f"a {self.decision} decision needs a reason")
        return self


class TokenIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "operator", "approver", "admin"]


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


class SiteIn(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")
    api_url: str = Field(min_length=1, description="e.g. https://sepm-a1:8446/sepm/api/v1")
    version: str = Field(min_length=1)
    replication_partners: list[str] = Field(default_factory=list)
    trusted_certificates_pem: list[str] = Field(default_factory=list)
    host_ops: HostOpsIn
    sepm_credentials: SepmCredentialsIn | None = None
    host_ops_credentials: HostOpsCredentialsIn | None = None


class ServerIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    site: str = Field(min_length=1)
    address: str = Field(min_length=1)
    hostnames: list[str] = Field(default_factory=list)
    version: str = Field(min_length=1)
    ports: dict[str, int] = Field(default_factory=dict, description='{"8443": 8443, ...}')


class TaskConfirmIn(_Body):
    note: str = ""
