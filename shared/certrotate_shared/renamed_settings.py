"""Settings that were renamed: deployments keep working under the old environment variable
names, and each old name is reported once per process with the name to use instead.

A service's Settings class lists its renames in `renamed_settings` ({old field: new field}).
The old variable is read with the same prefixes as the new one, just after it: a service's own
variable still wins over a shared one, and at each level the new name wins over the old."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

log = logging.getLogger(__name__)

# Old variable names already reported by this process.
_REPORTED: set[str] = set()


class RenamedVariables(PydanticBaseSettingsSource):
    """The values of renamed settings found under their old variable names (one prefix)."""

    def __init__(
        self, settings_cls: type[BaseSettings], prefix: str, renamed: Mapping[str, str]
    ) -> None:
        super().__init__(settings_cls)
        self._prefix = prefix.upper()
        self._renamed = renamed

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        if not self._renamed:
            return {}
        # Variable names are case-insensitive, as for every other setting.
        environ = {name.upper(): value for name, value in os.environ.items()}
        found: dict[str, Any] = {}
        for old, new in self._renamed.items():
            variable = f"{self._prefix}{old.upper()}"
            if variable in environ:
                found[new] = environ[variable]
                _report(variable, f"{self._prefix}{new.upper()}")
        return found


def _report(old: str, new: str) -> None:
    if old in _REPORTED:
        return
    _REPORTED.add(old)
    log.warning(
        "%s is deprecated: rename it to %s (still read under its old name for now; "
        "when both are set, %s wins)",
        old,
        new,
        new,
    )
