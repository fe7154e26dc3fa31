"""What the WinRM driver sends and reads back besides the script: the keystore it installs
(PEM bundles become PKCS#12 here) and the script's outcome, or the transport's failure."""

from __future__ import annotations

import json
import logging
from typing import Any

from certrotate_shared.hostops.base import CertificateBundle, HostOperationError
from certrotate_shared.hostops.winrm_script import ERROR_MARK, RESULT_MARK
from certrotate_shared.logs import redact

log = logging.getLogger("certrotate_shared.hostops.winrm")


def keystore_for_install(bundle: CertificateBundle) -> tuple[bytes, str, str]:
    """(keystore bytes, "jks" | "pkcs12", password) for the install script.

    A PEM certificate and key become a PKCS#12 here, since Windows PowerShell cannot read PEM;
    it keeps the bundle's password (SEPM needs a keystore password, so one is required).
    """
    if not bundle.password:
        raise HostOperationError(
            "the keystore needs a password: SEPM's server.xml cannot use an empty keystorePass",
            code="WRONG_PASSWORD",
        )
    if bundle.format in ("jks", "pkcs12"):
        return bundle.data, bundle.format, bundle.password
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    if bundle.key is None:
        raise HostOperationError(
            "a PEM certificate bundle needs its private key", code="INVALID_PRIVATE_KEY"
        )
    try:
        chain = x509.load_pem_x509_certificates(bundle.data)
    except ValueError as exc:
        raise HostOperationError("Invalid certificate file", code="INVALID_CERTIFICATE") from exc
    try:
        key = serialization.load_pem_private_key(bundle.key, password=bundle.password.encode())
    except TypeError:
        key = serialization.load_pem_private_key(bundle.key, password=None)
    except ValueError as exc:
        raise HostOperationError("Invalid private key file", code="INVALID_PRIVATE_KEY") from exc
    data = pkcs12.serialize_key_and_certificates(
        b"sepm",
        key,  # type: ignore[arg-type]
        chain[0],
        chain[1:] or None,
        serialization.BestAvailableEncryption(bundle.password.encode()),
    )
    return data, "pkcs12", bundle.password


def read_outcome(what: str, stdout: bytes, stderr: bytes, status: int) -> dict[str, Any]:
    lines = stdout.decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        if line.startswith(ERROR_MARK):
            failure = json.loads(line[len(ERROR_MARK) :])
            raise HostOperationError(
                f"could not {what}: {failure.get('message')}",
                retryable=bool(failure.get("retryable")),
                code=str(failure.get("code") or "SCRIPT_FAILED"),
            )
        if line.startswith(RESULT_MARK) and status == 0:
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            log.info("winrm: %s done%s", what, " (replayed)" if result.get("replayed") else "")
            return result
    tail = redact(stderr.decode("utf-8", "replace").strip())[-400:]
    raise HostOperationError(
        f"could not {what}: PowerShell exited with {status} without a result"
        + (f"; stderr: {tail}" if tail else ""),
        retryable=True,
        code="NO_RESULT",
    )


def transport_error(what: str, endpoint: str, exc: Exception) -> HostOperationError:
    name = type(exc).__name__
    if name == "InvalidCredentialsError":
        return HostOperationError(
            f"could not {what}: {endpoint} refused the WinRM account", code="ACCESS_DENIED"
        )
    # Connection, timeout and transport faults: the host may answer next time.
    return HostOperationError(
        f"could not {what}: WinRM to {endpoint} failed ({name}: {redact(str(exc))[:300]})",
        retryable=True,
        code="UNREACHABLE",
    )
