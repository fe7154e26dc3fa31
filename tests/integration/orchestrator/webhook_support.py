"""Webhook tests' orchestrator (the shared harness, harness.embedded_orchestrator, with a
certificates stand-in that tells certificates apart by their bytes), and a sender that signs
with the `standardwebhooks` reference library (not with certrotate's own code)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from standardwebhooks import Webhook

from orchestrator.adapters.orm import sagas
from orchestrator.adapters.webhook_tables import webhook_deliveries
from tests.integration.orchestrator.harness import (
    Embedded,
    embedded_orchestrator,
    fake_certificates_app,
)


class Hooks(Embedded):
    async def rotations(self) -> int:
        return await self.count(sagas)

    async def deliveries(self) -> int:
        return await self.count(webhook_deliveries)

    async def add_source(self, name: str = "pki") -> str:
        response = await self.api.post("/v1/webhooks/sources", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["secret"]["secret"])


async def started_hooks(
    tmp_path: Any, master_key: str, *, certificates: FastAPI | None = None, **overrides: Any
) -> AsyncIterator[Hooks]:
    """The orchestrator (SQLite, in-process bus) with a stand-in worker (see
    harness.embedded_orchestrator), callbacks polled every 50 ms."""
    overrides.setdefault("callback_poll_seconds", 0.05)
    async for env in embedded_orchestrator(
        tmp_path, master_key, kind=Hooks,
        certificates=certificates or fake_certificates_app(fingerprint_by_content=True),
        **overrides,
    ):  # fmt: skip
        yield env


def trigger_payload(data_b64: str = "Q0VSVC1PTkU=", **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "site": "site-a",
        "certificate": {"format": "pkcs12", "data_b64": data_b64, "password": "pfx-pass"},
        "change_id": "CHG0042",
    }
    payload.update(fields)
    return payload


def signed(
    secret: str,
    payload: dict[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery as a Standard Webhooks sender makes it, with the reference library."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
