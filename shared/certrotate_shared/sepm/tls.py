"""TLS to SEPM: trust exactly the certificates a rotation says to trust, hostnames still checked."""

from __future__ import annotations

import ssl


def sepm_ssl_context(trusted_certificates_pem: list[str]) -> ssl.SSLContext:
    """An SSLContext trusting these PEM certificates (a CA, or the old and the new server
    certificate during a rotation); the system trust store when the list is empty."""
    if not trusted_certificates_pem:
        return ssl.create_default_context()
    context = ssl.create_default_context(cadata="\n".join(trusted_certificates_pem))
    # A server certificate pinned by itself (not its CA) is a trust anchor only with
    # PARTIAL_CHAIN; without it OpenSSL insists on reaching a self-signed root.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
