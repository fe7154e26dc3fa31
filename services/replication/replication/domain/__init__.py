"""Pure rules of the replication service: no I/O, no SQLAlchemy, no httpx."""
