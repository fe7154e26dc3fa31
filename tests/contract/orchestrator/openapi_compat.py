"""What makes a new OpenAPI document incompatible with a recorded one, for a client built on the
old one: an operation, parameter, success status, schema or field gone; a type changed; a request
needing something more (a new required parameter or field, an enum value refused); a response
promising something less (a field no longer always there)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch")
SHAPE = ("type", "$ref", "items", "const", "format", "additionalProperties")


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for path, method, before in _operations(old):
        after = new["paths"].get(path, {}).get(method)
        if after is None:
            problems.append(f"{method.upper()} {path}: operation removed")
            continue
        problems += _operation(f"{method.upper()} {path}", before, after)
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    requests, responses = _sides(old)
    for name, before in old_schemas.items():
        if name not in new_schemas:
            problems.append(f"schema {name}: removed")
            continue
        problems += _schema(name, before, new_schemas[name], name in requests, name in responses)
    return problems


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _operation(where: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    problems = []
    old_params = {(p["in"], p["name"].lower()): p for p in before.get("parameters", [])}
    new_params = {(p["in"], p["name"].lower()): p for p in after.get("parameters", [])}
    for key, param in old_params.items():
        if key not in new_params:
            problems.append(f"{where}: parameter {key[1]!r} removed")
        elif _shape(param.get("schema", {})) != _shape(new_params[key].get("schema", {})):
            problems.append(f"{where}: parameter {key[1]!r} changed type")
    for key, param in new_params.items():
        was_required = old_params.get(key, {}).get("required", False)
        if param.get("required") and not was_required:
            problems.append(f"{where}: parameter {key[1]!r} became required")
    old_body, new_body = before.get("requestBody"), after.get("requestBody")
    if new_body and new_body.get("required") and not (old_body and old_body.get("required")):
        problems.append(f"{where}: a request body became required")
    for status in before.get("responses", {}):
        if status.startswith("2") and status not in after.get("responses", {}):
            problems.append(f"{where}: success status {status} no longer answered")
    return problems


def _schema(
    name: str, old: dict[str, Any], new: dict[str, Any], request: bool, response: bool
) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field, schema in old_props.items():
        if field not in new_props:
            problems.append(f"{name}: field {field!r} removed")
            continue
        if _shape(schema) != _shape(new_props[field]) and not (
            request and _widened(schema, new_props[field])
        ):
            problems.append(f"{name}: field {field!r} changed type")
        if request and set(_enum(schema)) - set(_enum(new_props[field])):
            problems.append(f"{name}: field {field!r} refuses a value it accepted")
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    if request:
        problems += [f"{name}: field {f!r} became required" for f in new_required - old_required]
    if response:
        problems += [f"{name}: field {f!r} no longer always answered"
                     for f in old_required - new_required]  # fmt: skip
    return problems


def _shape(schema: dict[str, Any]) -> Any:
    shape: dict[str, Any] = {k: schema[k] for k in SHAPE if k in schema}
    for key in ("anyOf", "oneOf"):
        if key in schema:
            shape[key] = sorted(
                (_shape(s) for s in schema[key]), key=lambda s: sorted(s.items(), key=str)
            )
    if isinstance(schema.get("items"), dict):
        shape["items"] = _shape(schema["items"])
    return shape


def _widened(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A request field that accepts all it did and more (a new alternative in anyOf)."""
    values = (old.get("additionalProperties"), new.get("additionalProperties"))
    if isinstance(values[0], dict) and isinstance(values[1], dict):  # a map: compare its values
        rest = [{k: v for k, v in s.items() if k != "additionalProperties"} for s in (old, new)]
        return _shape(rest[0]) == _shape(rest[1]) and _widened(values[0], values[1])
    alternatives = [_shape(s) for s in new.get("anyOf", [new])]
    return all(_shape(s) in alternatives for s in old.get("anyOf", [old]))


def _enum(schema: dict[str, Any]) -> list[Any]:
    values = list(schema.get("enum", []))
    for sub in schema.get("anyOf", []):
        values += _enum(sub)
    return values


def _sides(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Component schemas reachable from requests, and from responses."""
    schemas = document.get("components", {}).get("schemas", {})
    requests: set[str] = set()
    responses: set[str] = set()
    for _, _, operation in _operations(document):
        _reach(
            schemas, [operation.get("requestBody", {}), operation.get("parameters", [])], requests
        )
        _reach(schemas, [operation.get("responses", {})], responses)
    return requests, responses


def _reach(schemas: dict[str, Any], roots: list[Any], seen: set[str]) -> None:
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    stack.append(schemas.get(name, {}))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
