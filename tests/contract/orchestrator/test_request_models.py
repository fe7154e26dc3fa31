"""Request bodies refuse unknown fields at every depth (a typo must never be ignored)."""

from __future__ import annotations

from typing import Any

from orchestrator.entrypoints import schemas


def open_objects(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    found: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return open_objects(defs[name], defs, f"{path}<{name}>")
    if schema.get("type") == "object" and "properties" in schema:
        if schema.get("additionalProperties") is not False:
            found.append(path)
        for key, sub in schema["properties"].items():
            found += open_objects(sub, defs, f"{path}.{key}")
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            found += open_objects(sub, defs, path)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += open_objects(schema[key], defs, f"{path}[]")
    return found


def test_every_object_in_a_request_body_forbids_unknown_fields():
    for model in (schemas.RotationIn, schemas.SiteIn, schemas.ServerIn, schemas.DecideIn):
        schema = model.model_json_schema()
        assert open_objects(schema, schema.get("$defs", {}), model.__name__) == []
