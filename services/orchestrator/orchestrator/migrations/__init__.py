"""Alembic chain of the orchestrator's tables (version table alembic_version_orchestrator)."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
VERSION_TABLE = "alembic_version_orchestrator"
