"""What a failed SEPM call is reported as: a `SepmError` a person can act on, retryable or not,
that never echoes what an identity call sent."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx

from certrotate_shared.sepm.api import SepmAuthError, SepmError

IDENTITY = "/identity/"
# Answers that asking again may change; everything else 4xx is final.
_RETRYABLE_STATUS = {408, 425, 429}


@dataclass(frozen=True)
class CallSite:
    """What an error message names about the server and the session (never a secret)."""

    origin: str
    username: str
    connect_timeout: float
    read_timeout: float
    max_throttled: int


def status_error(at: CallSite, method: str, path: str, response: httpx.Response) -> SepmError:
    """The error for an HTTP answer of 400 or more that is not retried (any more)."""
    status = response.status_code
    retryable = status >= 500 or status in _RETRYABLE_STATUS
    if path.startswith(IDENTITY):
        # Never echo an identity body: it may carry what was sent.
        if status in (401, 403):
            return SepmAuthError(
                f"SEPM refused the API account {at.username!r} at {at.origin} "
                f"(HTTP {status}): wrong password, locked, or not a system administrator",
                status=status,
                retryable=False,
            )
        return SepmError(
            f"SEPM at {at.origin} could not log in (HTTP {status})",
            status=status,
            retryable=retryable,
        )
    detail = _error_message(response)
    if status == 429:
        detail = f"still throttled after {at.max_throttled} waits; {detail}"
    return SepmError(
        f"SEPM {method} {path} at {at.origin} failed with HTTP {status}: {detail}",
        status=status,
        retryable=retryable,
    )


def transport_error(
    at: CallSite, exc: httpx.TransportError, method: str, path: str
) -> tuple[SepmError, bool]:
    """The error to report, and whether the request certainly never reached SEPM."""
    cause = _root_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or str(cause)
        return (
            SepmError(
                f"cannot reach {at.origin}: its TLS certificate is not trusted ({reason})",
                retryable=False,
            ),
            True,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        reason = f"connection timed out after {at.connect_timeout:g} s"
        return SepmError(f"cannot reach {at.origin}: {reason}"), True
    if isinstance(exc, httpx.ConnectError):
        if isinstance(cause, ConnectionRefusedError):
            reason = "connection refused"
        else:
            reason = str(cause) or type(cause).__name__
        return SepmError(f"cannot reach {at.origin}: {reason}"), True
    if isinstance(exc, httpx.TimeoutException):
        return (
            SepmError(
                f"SEPM {method} {path} at {at.origin} did not answer within {at.read_timeout:g} s"
            ),
            False,
        )
    return (
        SepmError(f"SEPM {method} {path} at {at.origin} failed: {type(exc).__name__}"),
        False,
    )


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    if isinstance(body, dict) and body.get("errorMessage"):
        return str(body["errorMessage"])
    return response.reason_phrase or "no details"


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc
