"""Bundles uploaded on their own (POST /v1/bundles): their public description. The keystore and
its password stay sealed in the certificates service's store, under the same id."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, String, Text

from orchestrator.adapters.orm import Table

uploaded_bundles = Table(
    "uploaded_bundles",
    # The certificates service's reference: the public id too (random, no secret in it).
    Column("id", String(64), primary_key=True),
    Column("format", String(10), nullable=False),
    Column("fingerprint_sha256", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_after", DateTime(timezone=True)),
    Column("sans", JSON, nullable=False),
    Column("certificate_pem", Text, nullable=False),
    # The site it was checked for at upload, if any; every use is checked for its own site.
    Column("site", String(200)),
    Column("description", String(500), nullable=False),
    Column("uploaded_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The last time a rotation, trigger or campaign named it (migration o0013).
    Column("last_used_at", DateTime(timezone=True)),
)

# Rotations and campaigns whose leftovers the retention job has purged (migration o0013).
retention_purges = Table(
    "retention_purges",
    Column("owner_id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),  # rotation | campaign
    Column("purged_at", DateTime(timezone=True), nullable=False),
)
