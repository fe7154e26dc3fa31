"""The audit log: who changed inventory, tokens, subscriptions and webhook sources, and when."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, String

from orchestrator.adapters.orm import Table, _id_type

audit_log = Table(
    "audit_log",
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    # <object>.<verb>, e.g. site.created, token.revoked, webhook_source.secret_rolled
    Column("action", String(60), nullable=False),
    Column("target", String(300), nullable=False),
    Column("detail", JSON, nullable=False),
)
Index("ix_audit_log_at", audit_log.c.at)
