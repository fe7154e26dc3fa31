"""What a site must declare before certrotate will rotate it: outside a rehearsal, the trust
it needs to reach SEPM over TLS (no blind trust of whatever certificate a server presents)."""

from __future__ import annotations

import ssl
from typing import Any

from orchestrator.service_layer.errors import InputRejectedError


def check_site_policy(spec: dict[str, Any], *, rehearsal: bool) -> None:
    """Refuse what production must never do: SEPM over plain HTTP, the twin's host agent."""
    if not str(spec["api_url"]).lower().startswith("https://"):
        raise InputRejectedError(
            "api_url must be https:// (the SEPM account's password travels to it)",
            code="https_required",
        )
    for index, pem in enumerate(spec.get("trusted_certificates_pem", [])):
        if not _parses_as_certificates(pem):
            raise InputRejectedError(
                f"trusted_certificates_pem[{index}] is not a PEM certificate that parses "
                "(expected -----BEGIN CERTIFICATE----- ... of the SEPM server or its CA)",
                code="invalid_trust_pem",
            )
    if spec["host_ops"]["driver"] == "twin" and not rehearsal:
        raise InputRejectedError(
            "the twin driver drives the simulator, not SEPM hosts; it is accepted only in a "
            "rehearsal (CERTROTATE_ORCHESTRATOR_REHEARSAL=true, set by `certrotate up --twin` "
            "and the demo)",
            code="twin_driver_refused",
        )


def _parses_as_certificates(pem: str) -> bool:
    # The TLS stack that will use the trust set is the judge (it parses every certificate).
    # A bare context: create_default_context() would first load the system's CA store, which
    # cost more than the rest of a site's registration together.
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return False
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        return False
    return True
