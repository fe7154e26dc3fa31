"""A thin client of the orchestrator's REST API for the `certrotate` commands.

Every failure becomes one of two errors a command can map to an exit code: `ApiRefusedError`
(the API answered 4xx: fix the request) and `ApiUnavailableError` (it could not be reached,
timed out, or answered 5xx: try again later).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8080"
API_URL_ENV = "CERTROTATE_API_URL"
API_TOKEN_ENV = "CERTROTATE_API_TOKEN"  # noqa: S105 (the variable's name, not a token)
API_TOKEN_FILE_ENV = "CERTROTATE_API_TOKEN_FILE"  # noqa: S105


class ApiError(Exception):
    """A request to the certrotate API did not succeed."""


@dataclass
class ApiRefusedError(ApiError):
    """The API answered 4xx (problem+json): the request must change before it can succeed."""

    status: int
    title: str
    detail: str
    code: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.title} ({self.status}): {self.detail}" if self.detail else self.title
        return f"{text} [code: {self.code}]" if self.code else text


@dataclass
class ApiUnavailableError(ApiError):
    """The API could not be reached, timed out, or failed (5xx)."""

    message: str
    status: int | None = None
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.message} [code: {self.code}]" if self.code else self.message


class TokenMissingError(ApiError):
    """No API token was given by any of the usual means."""


def resolve_token(token: str | None, token_file: str | None) -> str:
    """The API token: --token, else --token-file, else CERTROTATE_API_TOKEN_FILE, else
    CERTROTATE_API_TOKEN. A token file holds the token alone, or JSON (see _token_in_json)."""
    if token and token.strip():
        return _header_safe(token.strip(), "--token")
    path = token_file or os.environ.get(API_TOKEN_FILE_ENV)
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise TokenMissingError(f"cannot read the token file {path}: {exc.strerror}") from None
        if value.startswith("{"):
            value = _token_in_json(value, path)
        if not value:
            raise TokenMissingError(f"the token file {path} is empty")
        return _header_safe(value, f"the token file {path}")
    value = os.environ.get(API_TOKEN_ENV, "").strip()
    if value:
        return _header_safe(value, API_TOKEN_ENV)
    raise TokenMissingError(
        f"no API token: pass --token-file FILE (or --token), or set {API_TOKEN_ENV}; "
        "for a local `certrotate up`, --token-file var/embedded/secrets.json"
    )


def _header_safe(token: str, source: str) -> str:
    """A token fit for an Authorization header; else an error that does not quote it (httpx's
    own error for an illegal header value does)."""
    if not all(" " <= ch < "\x7f" for ch in token):
        raise TokenMissingError(
            f"the API token from {source} is not one line of printable ASCII "
            "(a second line or a control character?)"
        )
    return token


def _token_in_json(text: str, path: str) -> str:
    """A token file may be JSON: an embedded stack's secrets.json (its admin token) or the
    output of `certrotate tokens create --json`."""
    try:
        data = json.loads(text)
    except ValueError:
        raise TokenMissingError(f"the token file {path} is not valid JSON") from None
    token = data.get("admin_token") or data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenMissingError(f"the JSON token file {path} has no admin_token or token field")
    return token


def _problem(response: httpx.Response) -> tuple[str, str, str | None, list[dict[str, Any]]]:
    """(title, detail, code, field errors) of an error answer, problem+json or not."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title = str(body.get("title") or response.reason_phrase or "Error")
        detail = body.get("detail")
        if not isinstance(detail, str):
            detail = "" if detail is None else str(detail)
        code = body.get("code")
        errors = body.get("errors")
        return (
            title,
            detail,
            str(code) if code else None,
            errors if isinstance(errors, list) else [],
        )
    text = response.text.strip()[:300]
    return response.reason_phrase or "Error", text, None, []


class ApiClient:
    """Synchronous calls to /v1 with a bearer token; answers are decoded JSON."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One call; raises ApiRefusedError on 4xx and ApiUnavailableError otherwise."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=clean, headers=headers)
        except httpx.ConnectError as exc:
            reason = _connect_reason(exc)
            raise ApiUnavailableError(
                f"cannot reach the certrotate API at {self.base_url}: {reason} "
                "— is `certrotate up` running?"
            ) from None
        except httpx.TimeoutException:
            raise ApiUnavailableError(
                f"the certrotate API at {self.base_url} did not answer in time"
            ) from None
        except httpx.LocalProtocolError:
            # Its text quotes the offending header, which may be the Authorization header.
            raise ApiUnavailableError(
                f"the request to the certrotate API at {self.base_url} could not be sent: "
                "a header (the API token?) holds characters HTTP does not allow"
            ) from None
        except httpx.TransportError as exc:
            raise ApiUnavailableError(
                f"cannot talk to the certrotate API at {self.base_url}: {exc or type(exc).__name__}"
            ) from None
        if response.status_code >= 500:
            title, detail, code, _ = _problem(response)
            text = f"{title} ({response.status_code})" + (f": {detail}" if detail else "")
            raise ApiUnavailableError(
                f"the certrotate API failed: {text}", status=response.status_code, code=code
            )
        if response.status_code >= 400:
            title, detail, code, errors = _problem(response)
            raise ApiRefusedError(response.status_code, title, detail, code, errors)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, json=body, headers=headers).json()

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def text(self, path: str, **params: Any) -> str:
        return self.request("GET", path, params=params).text

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged listing (sites, servers, tokens, tasks), following
        `next_cursor` from page to page."""
        cursor: str | None = None
        while True:
            page = self.get(path, **params, cursor=cursor, limit=500)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def rotations(self, *, state: str | None, site: str | None) -> Iterator[dict[str, Any]]:
        """Every rotation that matches, following the cursor from page to page."""
        cursor: str | None = None
        while True:
            page = self.get("/v1/rotations", state=state, site=site, cursor=cursor, limit=200)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def events(self, rotation_id: str, *, after: int = 0) -> Iterator[dict[str, Any]]:
        """The rotation's history after sequence number `after`, page by page."""
        while True:
            page = self.get(f"/v1/rotations/{rotation_id}/events", after=after, limit=1000)
            yield from page["items"]
            if page.get("next_after") is None:
                return
            after = int(page["next_after"])


def _connect_reason(exc: httpx.ConnectError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    if "no route" in text or "unreachable" in text:
        return "host unreachable"
    return str(exc) or "connection failed"
