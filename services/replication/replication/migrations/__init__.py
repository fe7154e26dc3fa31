"""Alembic chain of the replication service's tables (version table alembic_version_replication)."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
VERSION_TABLE = "alembic_version_replication"
