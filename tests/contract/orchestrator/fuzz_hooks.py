"""Schemathesis hooks (SCHEMATHESIS_HOOKS): test data for the rules a JSON schema cannot state.

A schema says what a well-formed request is; it cannot say which sites exist, which PEM parses,
which callback host is reachable, or which cursor the server handed out. For the requests
Schemathesis generates as valid (positive mode) those values are taken from the live
orchestrator's seeded data, so that a valid request really is valid and still gets every check;
invalid (negative) requests are left as generated. Nothing here turns a check off.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SITE = "fuzz-site"
SERVER = "fuzz-mgr"
CALLBACK_URL = "https://127.0.0.1:9/certrotate-callbacks"
CERTIFICATE = {"format": "pkcs12", "data_b64": "MIIKcQIBAzCCCjcGCSqGSIb3DQEHAaCC", "password": "p"}


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return bool(meta and meta.generation.mode.is_positive)


def _real_windows(value: Any) -> None:
    """A cron expression and a time zone that exist (a schema can only give their shape)."""
    if isinstance(value, dict):
        if "cron" in value:
            value.update(cron="0 22 * * *", timezone="UTC")
        for item in value.values():
            _real_windows(item)
    elif isinstance(value, list):
        for item in value:
            _real_windows(item)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _positive(case):
        return case
    route = f"{case.method.upper()} {case.operation.path}"
    body = case.body if isinstance(case.body, dict) else None
    if case.query:
        case.query.pop("cursor", None)  # only the server makes cursors (next_cursor)
    if route == "DELETE /v1/sites/{name}" and case.path_parameters.get("name") == SITE:
        # The stateful phase follows the listing's names: the site the others name stays.
        case.path_parameters["name"] = f"{SITE}-not-this-one"
    if route == "DELETE /v1/servers/{name}" and case.path_parameters.get("name") == SERVER:
        # Likewise its server: without one, every valid rotation is refused (no_servers).
        case.path_parameters["name"] = f"{SERVER}-not-this-one"
    if body is None:
        return case
    _real_windows(body)
    if route in ("POST /v1/rotations", "POST /v1/servers", "PUT /v1/servers/{name}"):
        body["site"] = SITE
    elif route in ("POST /v1/sites", "PUT /v1/sites/{name}"):
        body["trusted_certificates_pem"] = []
        body["sepm_credentials"] = {"username": "u", "password": "p", "domain": ""}
        body["host_ops_credentials"] = {"username": "u", "password": "p"}
    elif route == "POST /v1/subscriptions":
        body["url"] = CALLBACK_URL
        body.pop("site", None)
    elif route == "POST /v1/tokens" and body.get("expires_at") is not None:
        body["expires_at"] = "2099-01-01T00:00:00Z"  # "in the future" depends on the clock
    elif route == "POST /v1/bundles":
        body["site"] = SITE
    elif route == "POST /v1/campaigns":
        body["plan"] = {"sites": [SITE]}
        # Windows only for the plan's own wave and site (which exist is not the schema's to say).
        windows = [*body.get("wave_windows", {}).values(), *body.get("site_windows", {}).values()]
        body["wave_windows"] = {"1": windows[0]} if windows else {}
        body["site_windows"] = {SITE: windows[-1]} if windows else {}
        body["certificate"] = CERTIFICATE
        body["certificates"] = {}
    return case
