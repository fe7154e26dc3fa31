"""Every registered message's JSON schema against its snapshot: within a version, only optional
fields may be added. Set CERTROTATE_UPDATE_SNAPSHOTS=1 to record a deliberate change."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from certrotate_shared.envelope import Envelope, registered_messages

pytestmark = pytest.mark.contract

SNAPSHOT = Path(__file__).parent / "snapshots" / "messages.json"


def current_schemas() -> dict[str, Any]:
    return {
        f"{name}.v{version}": cls.model_json_schema()
        for (name, version), cls in sorted(registered_messages().items())
    }


def incompatibilities(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field, schema in old_props.items():
        if field not in new_props:
            problems.append(f"{name}: field {field!r} was removed")
        elif _shape(schema) != _shape(new_props[field]):
            problems.append(f"{name}: field {field!r} changed type")
    for field in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{name}: field {field!r} became required")
    if old.get("$defs") != new.get("$defs"):
        for ref, sub in (old.get("$defs") or {}).items():
            problems += incompatibilities(
                f"{name}.{ref}", sub, (new.get("$defs") or {}).get(ref, {})
            )
    return problems


def _shape(schema: dict[str, Any]) -> Any:
    keep = ("type", "$ref", "anyOf", "items", "enum", "const", "format", "additionalProperties")
    return {k: schema[k] for k in keep if k in schema}


def test_message_schemas_stay_compatible_with_their_snapshot():
    schemas = current_schemas()
    recorded = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    problems = []
    for name, old in recorded.items():
        if name not in schemas:
            problems.append(f"{name}: message removed (publish a new version instead)")
        else:
            problems += incompatibilities(name, old, schemas[name])
    # Checked before any update: recording a snapshot must not wave an incompatible change
    # through (it used to overwrite the snapshot first, so the comparison could not fail).
    assert not problems, "incompatible message changes:\n" + "\n".join(problems)
    if os.environ.get("CERTROTATE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(schemas, indent=1, sort_keys=True) + "\n")
        return
    unrecorded = sorted(set(schemas) - set(recorded))
    assert not unrecorded, (
        f"new messages {unrecorded} are not in the snapshot; "
        "record them with CERTROTATE_UPDATE_SNAPSHOTS=1"
    )


def test_compatibility_check_catches_a_removed_field_and_a_new_required_one():
    old: dict[str, Any] = {
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    new: dict[str, Any] = {
        "properties": {"a": {"type": "integer"}, "c": {"type": "string"}},
        "required": ["a", "c"],
    }
    problems = incompatibilities("X.v1", old, new)
    assert "X.v1: field 'b' was removed" in problems
    assert "X.v1: field 'a' changed type" in problems
    assert "X.v1: field 'c' became required" in problems
    added_optional = {**old, "properties": {**old["properties"], "d": {"type": "string"}}}
    assert incompatibilities("X.v1", old, added_optional) == []


def test_the_envelope_has_the_fields_of_the_design():
    assert set(Envelope.model_json_schema()["properties"]) == {
        "message_id",
        "type",
        "version",
        "saga_id",
        "correlation_id",
        "causation_id",
        "occurred_at",
        "payload",
        "headers",  # the trace context (W3C traceparent), when tracing is on
    }
