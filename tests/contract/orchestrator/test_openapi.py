"""The orchestrator's OpenAPI document is its contract with the CLI, ITSM integrations and any
generated client: compatible with its snapshot, every error documented as problem+json with its
codes. Set CERTROTATE_UPDATE_SNAPSHOTS=1 to record a deliberate (compatible) change."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import orchestrator
from certrotate_shared.clock import ManualClock
from certrotate_shared.http import add_health_routes
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
from tests.contract.orchestrator.openapi_compat import incompatibilities
from tests.integration.orchestrator.support import ADMIN, INTERNAL

pytestmark = pytest.mark.contract

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "orchestrator-openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
def app(tmp_path: Path, master_key: str) -> FastAPI:
    runtime = build_runtime(
        Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db", transport="local",
            local_log_path=str(tmp_path / "bus.db"), vault_url=f"sqlite+aiosqlite:///{tmp_path}/v.db",
            master_key=master_key, admin_token=ADMIN, internal_token=INTERNAL,
        ),
        clock=ManualClock(),
    )  # fmt: skip
    assert runtime.spec.api is not None
    api = runtime.spec.api(runtime)
    add_health_routes(api, service=runtime.spec.name, readiness=runtime.readiness)
    return api


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_openapi_stays_compatible_with_its_snapshot(app: FastAPI):
    document = app.openapi()
    recorded = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else None
    problems = incompatibilities(recorded, document) if recorded else []
    # Checked before any update: recording must not wave an incompatible change through.
    assert not problems, "incompatible API changes:\n" + "\n".join(problems)
    if os.environ.get("CERTROTATE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        return
    assert recorded is not None, "no OpenAPI snapshot: record it with CERTROTATE_UPDATE_SNAPSHOTS=1"
    assert recorded == json.loads(json.dumps(document)), (
        "the OpenAPI document changed compatibly: record it with CERTROTATE_UPDATE_SNAPSHOTS=1"
    )


def test_every_error_response_is_problem_json_with_its_codes(app: FastAPI):
    document = app.openapi()
    missing = []
    for path, method, operation in operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                if list(response.get("content", {})) != ["application/problem+json"]:
                    missing.append(f"{method} {path} {status}: not problem+json only")
                if not response.get("x-problem-codes"):
                    missing.append(f"{method} {path} {status}: no codes")
        guarded = any(p["name"].lower() == "authorization" for p in operation.get("parameters", []))
        expected = {"401", "403", "429"} if guarded else set()
        if "{" in path:
            expected.add("404")
        if operation.get("parameters") or "requestBody" in operation:
            expected.add("422")
        if "requestBody" in operation:
            expected |= {"400", "413"}
        missing += [f"{method} {path}: {s} undocumented" for s in sorted(expected - set(responses))]
    assert missing == []


def test_every_code_the_orchestrator_answers_with_is_documented(app: FastAPI):
    source = Path(orchestrator.__file__).parent
    # What the API answers with (adapters/ speak to peers: their codes are translated first).
    raised = {
        code
        for layer in ("entrypoints", "service_layer", "domain")
        for module in (source / layer).rglob("*.py")
        for code in re.findall(r'\bcode="([a-z_]+)"', module.read_text())
    }
    documented = {
        code
        for _, _, operation in operations(app.openapi())
        for response in operation["responses"].values()
        for code in response.get("x-problem-codes", [])
    }
    assert raised - documented == set()


async def test_a_method_a_path_does_not_have_gets_405_with_allow(app: FastAPI):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o") as c:
        answer = await c.request("TRACE", "/v1/tokens/abc")
        listing = await c.request("PATCH", "/v1/sites")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "DELETE"
    # Every route of the path counts, not only the first one that matched it.
    assert listing.status_code == 405 and listing.headers["allow"] == "GET, POST"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "method_not_allowed"


def test_compatibility_check_catches_what_breaks_a_client():
    def doc(param_required: bool, body_fields: dict[str, Any], required: list[str],
            answer_required: list[str], status: str) -> dict[str, Any]:  # fmt: skip
        return {
            "paths": {"/v1/x": {"post": {
                "parameters": [{"in": "query", "name": "q", "required": param_required,
                                "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/In"}}}},
                "responses": {status: {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Out"}}}}},
            }}},
            "components": {"schemas": {
                "In": {"properties": body_fields, "required": required},
                "Out": {"properties": {"id": {"type": "string"}}, "required": answer_required},
            }},
        }  # fmt: skip

    role = {"enum": ["viewer", "admin"], "type": "string"}
    old = doc(False, {"a": {"type": "string"}, "role": role}, [], ["id"], "200")
    assert incompatibilities(old, old) == []
    grown = doc(False, {"a": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        "b": {"type": "string"},
                        "role": {**role, "enum": ["viewer", "admin", "approver"]}}, [], ["id"],
                "200")  # fmt: skip
    assert incompatibilities(old, grown) == []
    broken = doc(True, {"a": {"type": "integer"}, "role": {**role, "enum": ["admin"]}}, ["a"], [],
                 "201")  # fmt: skip
    assert sorted(incompatibilities(old, broken)) == [
        "In: field 'a' became required",
        "In: field 'a' changed type",
        "In: field 'role' refuses a value it accepted",
        "Out: field 'id' no longer always answered",
        "POST /v1/x: parameter 'q' became required",
        "POST /v1/x: success status 200 no longer answered",
    ]
    assert incompatibilities(old, {"paths": {}, "components": {}}) == [
        "POST /v1/x: operation removed", "schema In: removed", "schema Out: removed",
    ]  # fmt: skip


# The health probes (shared by every service) and the audit export (JSON lines): no model.
UNMODELLED = {"/healthz", "/readyz", "/v1/audit/export"}


def test_every_json_answer_has_a_named_model_a_client_can_be_generated_from(app: FastAPI):
    document = app.openapi()
    schemas = document["components"]["schemas"]
    free_form = []
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204" or path in UNMODELLED:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            name = schema.get("$ref", "").rsplit("/", 1)[-1]
            if name not in schemas or not schemas[name].get("properties"):
                free_form.append(f"{method} {path} {status}")
    assert free_form == []
