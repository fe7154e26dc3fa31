"""Every error the API answers, in its OpenAPI document: RFC 9457 problem+json with the `code`s
a client can branch on (listed per response in `x-problem-codes`).

A route declares what is particular to it (`responses={409: problem("...", "site_busy")}`); what
follows from its shape is added to every operation here: 401/403/429 where a role is needed, 404
where the path names a resource, 422 where it takes input, 400 and 413 where it takes a body.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from certrotate_shared.http import PROBLEM

CODES = "x-problem-codes"
# Codes of the certificate pre-flight (the certificates service's checks) passed on as they are.
PREFLIGHT = ("wrong_password", "corrupt", "expired", "weak_key", "san_missing")
Responses = dict[int | str, dict[str, Any]]
_REF = {"$ref": "#/components/schemas/Problem"}


class FieldError(BaseModel):
    field: str = Field(description="Where in the request: `query.limit`, `certificate.format`")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details. `code` is stable for programs; `detail` is for a person and
    never echoes a submitted secret. Some codes add fields of their own."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code; see x-problem-codes on each response")
    errors: list[FieldError] | None = Field(None, description="The fields at fault (422)")


def problem(description: str, *codes: str) -> dict[str, Any]:
    """One documented error response of a route."""
    return {"description": description, "content": {PROBLEM: {"schema": _REF}}, CODES: list(codes)}


_BY_SHAPE: dict[str, dict[str, Any]] = {
    "400": problem("The body is not JSON (or not UTF-8)", "bad_request"),
    "401": problem(
        "No bearer token, or an unknown, expired or revoked one", "token_required", "token_invalid"
    ),
    "403": problem("The token's role is below the one this action needs", "role_required"),
    "429": problem(
        "Too many failed authentications from this address: wait Retry-After seconds",
        "too_many_failed_authentications",
    ),
    "404": problem("Nothing of that name or id", "not_found"),
    "413": problem("The request body is larger than the configured limit", "payload_too_large"),
    "422": problem("The request is not valid (its fields at fault in `errors`)", "invalid_request"),
}


def document_problems(app: FastAPI) -> None:
    """Complete every operation's error responses when the OpenAPI document is built."""
    build: Callable[[], dict[str, Any]] = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            document = build()
            _complete(document)
            done.append(document)
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for path, item in document["paths"].items():
        for operation in item.values():
            _complete_operation(path, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    params = operation.get("parameters", [])
    wanted = []
    if any(p["name"].lower() == "authorization" for p in params):
        wanted += ["401", "403", "429"]
    if "{" in path:
        wanted.append("404")
    if params or "requestBody" in operation:
        wanted.append("422")
    if "requestBody" in operation:
        wanted += ["400", "413"]
    for status in wanted:
        default = _BY_SHAPE[status]
        declared = responses.get(status)
        if declared is None or declared.get("description") == "Validation Error":
            # Absent, or FastAPI's own 422 (application/json, another schema): ours instead.
            responses[status] = {**default, CODES: list(default[CODES])}
        elif not declared.get(CODES) or status == "422":  # invalid input is always possible
            codes = declared.setdefault(CODES, [])
            codes += [c for c in default[CODES] if c not in codes]
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {PROBLEM: {"schema": _REF}}
