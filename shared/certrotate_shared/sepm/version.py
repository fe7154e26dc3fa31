"""SEPM versions as GET /version answers them ("14.3.9000", "14.3.25029.9000") and as people
register them ("v14.3", "14.2 RU1", "12.1 RU6 MP10"): only the major and minor matter here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_VERSION = re.compile(r"^\s*[vV]?\s*(?P<major>\d{1,3})(?:\.(?P<minor>\d{1,4}))?(?![\d])")


@dataclass(frozen=True, order=True)
class SepmVersion:
    major: int
    minor: int = 0

    @property
    def has_api_service(self) -> bool:
        """semapisrv (the REST API service) exists from 14.0 on (the vendor procedure, step 4)."""
        return self.major >= 14

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def parse_version(text: Any) -> SepmVersion | None:
    """The major.minor a version string starts with, or None if it does not start with one."""
    if not isinstance(text, str):
        return None
    match = _VERSION.match(text)
    if match is None:
        return None
    return SepmVersion(int(match["major"]), int(match["minor"] or 0))


def reported_version(answer: dict[str, Any]) -> tuple[SepmVersion | None, str]:
    """From a GET /version answer: the parsed version and the text it came from (when none
    parses, the first text given, for the error message).

    The product `version` ("14.3.25029.9000") first, then `API_VERSION` ("14.3.9000").
    """
    seen = ""
    for key in ("version", "API_VERSION"):
        text = answer.get(key)
        parsed = parse_version(text)
        if parsed is not None:
            return parsed, str(text)
        if isinstance(text, str) and text.strip() and not seen:
            seen = text.strip()[:40]
    return None, seen
