"""Alembic chain of the client-monitor's tables (version table alembic_version_client_monitor)."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
VERSION_TABLE = "alembic_version_client_monitor"
