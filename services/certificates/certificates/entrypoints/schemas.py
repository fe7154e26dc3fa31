"""The internal API's request and response bodies (the orchestrator is their only client)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from certificates.domain.validation import ValidatedCertificate

# A campaign holds up to a few hundred sites; the orchestrator sends larger ones in parts.
MAX_USES_PER_BATCH = 500


class BundleUpload(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # Empty for a bundle uploaded on its own (POST /v1/bundles): each use names its site.
    site: str = Field("", max_length=200)
    format: Literal["pkcs12", "jks", "pem"]
    data_b64: SecretStr
    password: SecretStr | None = None
    key_b64: SecretStr | None = None
    hostnames: list[str] = Field(default_factory=list)
    min_validity_days: int | None = Field(default=None, ge=0)


class BundleUse(BaseModel):
    """A stored bundle checked again for one site, now; the rotation gets its own copy."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=200)
    hostnames: list[str] = Field(default_factory=list)
    min_validity_days: int | None = Field(default=None, ge=0)


class BundleUses(BaseModel):
    """A stored bundle checked for many sites at once (a campaign): opened once for them all."""

    model_config = ConfigDict(extra="forbid")

    uses: list[BundleUse] = Field(min_length=1, max_length=MAX_USES_PER_BATCH)


class Holds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bundle_refs: list[str] = Field(max_length=100_000)


class RetentionPurge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    saga_ids: list[str] = Field(default_factory=list, max_length=10_000)
    bundle_refs: list[str] = Field(default_factory=list, max_length=10_000)
    # saga id -> servers whose backup stays on the host: the rotation ended with them not
    # back on a known certificate, so a rollback by hand may still need it.
    keep_backups: dict[str, list[str]] = Field(default_factory=dict, max_length=10_000)


class StoredBundleOut(BaseModel):
    bundle_ref: str
    fingerprint_sha256: str
    subject: str
    not_after: str
    sans: list[str]
    certificate_pem: str
    warnings: list[str]


def described(bundle_ref: str, validated: ValidatedCertificate) -> StoredBundleOut:
    return StoredBundleOut(
        bundle_ref=bundle_ref,
        fingerprint_sha256=validated.fingerprint_sha256,
        subject=validated.subject,
        not_after=validated.not_after.isoformat(),
        sans=validated.sans,
        certificate_pem=validated.certificate_pem,
        warnings=validated.warnings,
    )
