"""Structured logs (structlog over the standard library's loggers): JSON lines for machines, a
readable line on a terminal, the rotation's ids on every line that has them, and a last line
of defence against secrets.

Code logs with `logging.getLogger(__name__)` as before; where a message, a timer or a request
is handled, `log_context()` binds `rotation_id`, `campaign_id`, `site`, `step`, `message_id` and
`causation_id`, so one rotation can be followed across the four services with one filter.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import structlog
from structlog.contextvars import (
    bind_contextvars,
    get_contextvars,
    merge_contextvars,
    reset_contextvars,
)
from structlog.typing import EventDict, WrappedLogger

LOG_FIELDS = ("rotation_id", "campaign_id", "site", "step", "message_id", "causation_id")

LogFormat = Literal["auto", "json", "console"]

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(
        r"(?i)(\"?(?:password|passwd|secret|token|private_key|key_b64|data_b64|master_key)\"?"
        r"\s*[:=]\s*)"
        # A double-quoted value runs to its closing quote, past escaped ones (\" in JSON).
        # Unquoted (or cut off) values stop before a quote or backslash, so that redacting a
        # rendered JSON line never eats the quote that closes its field.
        r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|\"?[^\s,}\"\\]+)"
    ),
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"\\,]+"),
]


def redact(text: str) -> str:
    """Replace anything that looks like a secret with a marker."""
    text = _SECRET_PATTERNS[0].sub("[REDACTED PRIVATE KEY]", text)
    text = _SECRET_PATTERNS[1].sub(r"\1[REDACTED]", text)
    return _SECRET_PATTERNS[2].sub(r"\1[REDACTED]", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RedactingProcessorFormatter(structlog.stdlib.ProcessorFormatter):
    """Redacts the rendered line, whatever field or message a secret slipped into."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind the rotation's ids for every line logged inside (unknown ones stay off the line);
    on exit they, and whatever code inside bound on top of them, are unbound."""
    values = {name: fields.pop(name, None) for name in LOG_FIELDS} | fields
    tokens = bind_contextvars(**values)
    try:
        yield
    finally:
        reset_contextvars(**tokens)


def current_log_fields() -> dict[str, Any]:
    """The fields bound now (to log later, e.g. after a commit, as if still here)."""
    return get_contextvars()


def bind_log_fields(**fields: Any) -> None:
    """Add fields to the lines logged from here to the end of the enclosing log_context()."""
    bind_contextvars(**{name: value for name, value in fields.items() if value is not None})


def _drop_unknown(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return {name: value for name, value in event.items() if value is not None}


def _redact_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # Before rendering: once inside a JSON line, a message's quotes are escaped again.
    return {name: redact(v) if isinstance(v, str) else v for name, v in event.items()}


def _add_service(service: str) -> Any:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        return event

    return add


def log_formatter(service: str, log_format: LogFormat = "auto") -> logging.Formatter:
    """The formatter of every service's log handler: JSON, or console on a terminal."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)
    )
    before = [
        merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        _drop_unknown,
    ]
    after: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if use_json:
        after.append(structlog.processors.format_exc_info)
    after.append(_redact_fields)
    return _RedactingProcessorFormatter(foreign_pre_chain=before, processors=[*after, renderer])


def configure_logging(service: str, level: str = "INFO", log_format: LogFormat = "auto") -> None:
    """One line per record on stderr (JSON unless stderr is a terminal), secrets scrubbed,
    noisy libraries quietened."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_formatter(service, log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
