"""Reading SEPM's answers: the shapes its REST definition gives, checked before anyone indexes
them, so a server that answers differently is a typed, final error and never a TypeError that a
worker retries forever."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from certrotate_shared.sepm.api import SepmDomain, SepmLocation, SepmMalformedAnswerError


def malformed(where: str, what: str) -> SepmMalformedAnswerError:
    """The error for an answer at `where` (method and path) that is not `what` it should be."""
    return SepmMalformedAnswerError(f"SEPM {where} answered with an unexpected shape: {what}")


def expect_object(body: Any, where: str) -> dict[str, Any]:
    """A JSON object, or a malformed-answer error."""
    if not isinstance(body, dict):
        raise malformed(where, f"expected a JSON object, got {_kind(body)}")
    return body


def expect_bool(body: Any, where: str) -> bool:
    """A JSON boolean, or a malformed-answer error."""
    if not isinstance(body, bool):
        raise malformed(where, f"expected true or false, got {_kind(body)}")
    return body


def expect_int(value: Any, where: str, name: str) -> int:
    """An integer field, or a malformed-answer error (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(where, f"{name} should be an integer, got {_kind(value)}")
    return value


def text_field(item: dict[str, Any], key: str, where: str) -> str:
    """A non-empty string field of an object SEPM answered, or a malformed-answer error."""
    value = item.get(key)
    if not _text(value):
        name = item.get("fullPathName") or item.get("id") or item.get("uniqueId") or "an item"
        raise malformed(where, f"{name}: {key} should be a non-empty string, got {_kind(value)}")
    return str(value)


def nested_objects(body: dict[str, Any], path: tuple[str, ...], where: str) -> None:
    """Along `path`, each present value is an object and the last one an array of objects
    (the services index into them: replication partners, client counts)."""
    node: Any = body
    for depth, key in enumerate(path):
        node = node.get(key)
        if node is None:
            return
        last = depth == len(path) - 1
        if not last and not isinstance(node, dict):
            raise malformed(where, f"{key} should be an object, got {_kind(node)}")
        if last:
            if not isinstance(node, list):
                raise malformed(where, f"{key} should be an array, got {_kind(node)}")
            for item in node:
                if not isinstance(item, dict):
                    raise malformed(where, f"{key} holds {_kind(item)}, not objects")


def page(body: Any, where: str, *, key: str | None) -> tuple[list[dict[str, Any]], bool]:
    """A Page object's content (objects, each with a string `key` when given) and lastPage."""
    body = expect_object(body, where)
    content = body.get("content")
    if content is None:
        content = []
    if not isinstance(content, list):
        raise malformed(where, f"content should be an array, got {_kind(content)}")
    for item in content:
        if not isinstance(item, dict):
            raise malformed(where, f"content holds {_kind(item)}, not objects")
        if key is not None and not _text(item.get(key)):
            raise malformed(where, f"an item of content has no {key} (got {_kind(item.get(key))})")
    last = body.get("lastPage", True)
    if not isinstance(last, bool):
        raise malformed(where, f"lastPage should be true or false, got {_kind(last)}")
    return content, last


def domains(body: Any, where: str) -> list[SepmDomain]:
    """GET /domains: an array of the definition's Domain objects (id, name, enable, ...)."""
    if not isinstance(body, list):
        raise malformed(where, f"expected an array of domains, got {_kind(body)}")
    found = []
    for item in body:
        if not isinstance(item, dict):
            raise malformed(where, f"a domain is {_kind(item)}, not an object")
        enabled = item.get("enable", True)
        if not isinstance(enabled, bool):
            raise malformed(where, f"domain enable should be true or false, got {_kind(enabled)}")
        found.append(
            SepmDomain(
                id=text_field(item, "id", where),
                name=text_field(item, "name", where),
                enabled=enabled,
            )
        )
    return found


def check_domain(
    items: list[dict[str, Any]],
    domain_id: str,
    where: str,
    summary_of: Callable[[dict[str, Any]], Any],
) -> None:
    """Refuse items of another domain than the one asked for, where SEPM names it.

    The definition does not say whether `domain` takes the domain's id or its name; a server
    that ignored it would hand back the login domain's items for every domain asked, and each
    domain but one would be neither changed nor watched.
    """
    wanted = domain_id.upper()
    for item in items:
        summary = summary_of(item)
        if not isinstance(summary, dict):
            continue
        got = summary.get("id")
        if isinstance(got, str) and got and got.upper() != wanted:
            raise malformed(where, f"asked for domain {domain_id} and got an item of domain {got}")


def locations(body: Any, where: str) -> list[SepmLocation]:
    """GET /groups/{id}/locations, in every shape seen.

    SEPM's definition ("Get Location IDs For Group") answers an array; on real servers its items
    are strings: with hasName=true "<name>:api/v1/locations/<id>" (name before the first ':',
    id after the last '/', as PSSymantecSEPM's Get-SEPMLocation reads them), otherwise the bare
    id. Older twins and some proxies answered [{name, id}]; that shape is read too.
    """
    if not isinstance(body, list):
        raise malformed(where, f"expected an array of locations, got {_kind(body)}")
    return [_location(item, where) for item in body]


def _location(item: Any, where: str) -> SepmLocation:
    if isinstance(item, str):
        if ":" in item:
            name, _, rest = item.partition(":")
            location_id = rest.rsplit("/", 1)[-1].strip()
            if not location_id:
                raise malformed(where, f"location {item!r} has no id after its last '/'")
            return SepmLocation(id=location_id, name=name)
        location_id = item.rsplit("/", 1)[-1].strip()
        if not location_id:
            raise malformed(where, "an empty location")
        return SepmLocation(id=location_id, name=None)
    if isinstance(item, dict):
        object_id, object_name = item.get("id"), item.get("name")
        if not isinstance(object_id, str) or not object_id.strip():
            raise malformed(where, f"a location object without a string id: {sorted(item)}")
        if object_name is not None and not isinstance(object_name, str):
            raise malformed(where, f"location {object_id} has a name of {_kind(object_name)}")
        return SepmLocation(id=object_id, name=object_name)
    raise malformed(where, f"a location is {_kind(item)}, not a string")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _kind(value: Any) -> str:
    """A value's JSON type, never its content (an answer may carry things not to be logged)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
