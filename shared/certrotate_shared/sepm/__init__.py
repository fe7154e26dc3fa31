"""Talking to SEPM's REST API (as its REST definition has it; sources in docs/design.md): the
interface services depend on, and its connector."""

from certrotate_shared.sepm.api import (
    SepmApi,
    SepmAuthError,
    SepmDomain,
    SepmError,
    SepmLocation,
    SepmMalformedAnswerError,
)

__all__ = [
    "SepmApi",
    "SepmAuthError",
    "SepmDomain",
    "SepmError",
    "SepmLocation",
    "SepmMalformedAnswerError",
]
