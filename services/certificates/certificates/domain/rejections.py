"""Why an uploaded certificate bundle is refused: a stable code and a reason for a person."""

from __future__ import annotations

from typing import Any

# SEPM's configuration wizard says this for any keystore it cannot parse.
INVALID_KEYSTORE = "Invalid keystore file"


class BundleRejected(ValueError):
    """The bundle cannot be used; `code` is stable for machines, `detail` is for a person."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra
