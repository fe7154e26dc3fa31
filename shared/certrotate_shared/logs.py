"""Logging set-up with a last line of defence against secrets in log lines."""

from __future__ import annotations

import logging
import re
import sys

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(
        r"(?i)(\"?(?:password|passwd|secret|token|private_key|key_b64|data_b64|master_key)\"?"
        r"\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,}]+)"
    ),
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
]


def redact(text: str) -> str:
    """Replace anything that looks like a secret with a marker."""
    text = _SECRET_PATTERNS[0].sub("[REDACTED PRIVATE KEY]", text)
    text = _SECRET_PATTERNS[1].sub(r"\1[REDACTED]", text)
    return _SECRET_PATTERNS[2].sub(r"\1[REDACTED]", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(service: str, level: str = "INFO") -> None:
    """One line per record on stderr, secrets scrubbed, noisy libraries quietened."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
