"""Structured log lines: the rotation's ids where a message is handled, JSON or readable, and
no secret, even inside a JSON string with escaped quotes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from certrotate_shared.dispatch import message_log_fields
from certrotate_shared.envelope import Envelope
from certrotate_shared.logs import bind_log_fields, log_context, log_formatter, redact
from certrotate_shared.messages.replication import BreakReplication
from tests.support.factories import site_target

pytestmark = pytest.mark.unit


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("certrotate.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, out, handler
    finally:
        logger.removeHandler(handler)


def json_lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_logged_while_a_message_is_handled_carries_the_rotations_ids(lines) -> None:
    logger, out, handler = lines
    handler.setFormatter(log_formatter("replication", "json"))
    command = BreakReplication(
        idempotency_key="rot-1:break_replication:1", site=site_target("site-a"), partners=["b"]
    )
    cause = Envelope.wrap(command, saga_id="rot-0")
    envelope = Envelope.wrap(command, saga_id="rot-1", causation=cause)
    with log_context(**message_log_fields(envelope, command)):
        logger.info("breaking %d partnership(s)", 1)
        bind_log_fields(step="restore_replication")  # bound deeper down, undone on exit
        logger.warning("inner")
    logger.info("after")
    inside, inner, after = json_lines(out)
    assert inside["event"] == "breaking 1 partnership(s)"
    assert inside["service"] == "replication" and inside["level"] == "info"
    assert inside["rotation_id"] == "rot-1"
    assert inside["site"] == "site-a"
    assert inside["step"] == "break_replication"
    assert inside["message_id"] == str(envelope.message_id)
    assert inside["causation_id"] == str(cause.message_id)
    assert "campaign_id" not in inside  # unknown ids stay off the line
    assert inner["step"] == "restore_replication"
    assert not {"rotation_id", "site", "step", "message_id", "causation_id"} & set(after)


def test_secrets_never_reach_a_json_line(lines) -> None:
    logger, out, handler = lines
    handler.setFormatter(log_formatter("certificates", "json"))
    body = json.dumps({"username": "admin", "password": 'hun"ter2-rest'})
    logger.info("login body %s", body)
    logger.info("sent Authorization: Bearer tok-abcdef123")
    try:
        raise RuntimeError('vault said {"master_key": "c2VjcmV0LWtleQ=="}')
    except RuntimeError:
        logger.exception("failed")
    text = out.getvalue()
    for secret in ("hun", "ter2", "rest", "tok-abcdef123", "c2VjcmV0LWtleQ"):
        assert secret not in text, secret
    assert all(json.loads(line) for line in text.splitlines())  # still valid JSON
    assert "admin" in text  # what is not secret stays readable


def test_redaction_follows_escaped_quotes_to_the_end_of_a_json_string() -> None:
    line = redact('{"password": "ab\\"cd\\"ef", "next": 1}')
    assert "cd" not in line and "ef" not in line
    assert '"next": 1' in line


def test_on_a_terminal_the_line_is_readable_not_json(lines) -> None:
    logger, out, handler = lines
    handler.setFormatter(log_formatter("orchestrator", "console"))
    with log_context(rotation_id="rot-9", site="site-c"):
        logger.info("waiting for propagation")
    line = out.getvalue().strip()
    assert not line.startswith("{")
    assert "waiting for propagation" in line
    assert "rotation_id=rot-9" in line and "site=site-c" in line
