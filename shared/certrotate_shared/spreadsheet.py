"""Values written into CSV exports that people open in spreadsheets."""

from __future__ import annotations

from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection");
# computer and group names are chosen by whoever names the machine.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text a spreadsheet would evaluate, prefixed with a quote so it stays text; others as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
