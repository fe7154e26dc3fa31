"""Where a service's HTTP API listens and with which TLS (mTLS when it asks for client
certificates), and what it trusts and presents when it calls the other services."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ListenerSettings(BaseModel):
    """The HTTP listener and the TLS of calls between services."""

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

    def _check_tls_pairs(self, prefix: str) -> None:
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
