"""Jinja2 pages and their live regions, with the headers every dashboard response carries.

A live region is a part of a page that htmx re-reads every few seconds. The poll URL carries a
digest of what the browser shows; when nothing changed the answer is 204 and htmx leaves the
region alone, so a form being filled in or a focused button is not replaced under the person.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from certrotate_shared.history_text import entry_summary, short_fingerprint
from orchestrator.entrypoints.dashboard import presenters

HERE = Path(__file__).parent
# Same origin only, no inline script or style: htmx is told not to inject its own <style>.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(
    when=presenters.when,
    duration=presenters.duration,
    fingerprint=short_fingerprint,
    summary=entry_summary,
    readable=presenters.readable,
)


def html(content: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(
        content, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )


class Page:
    """One page's context; renders the whole page or, for a poll, one live region."""

    def __init__(
        self,
        request: Request,
        context: dict[str, Any],
        *,
        polling: bool = True,
        path: str | None = None,
    ):
        self.request = request
        self.polling = polling
        # Where regions are polled from: the page's own path (an action answers for its page).
        self.path = path or request.url.path
        self.context = {**context, "request": request, "live": self.live}

    def live(self, part: str) -> Markup:
        inner = env.get_template(f"parts/{part}.html").render(self.context)
        return self._wrap(part, inner)

    def _digest(self, inner: str) -> str:
        return hashlib.sha256(f"{self.polling}:{inner}".encode()).hexdigest()[:20]

    def _wrap(self, part: str, inner: str) -> Markup:
        query = [
            (k, v) for k, v in self.request.query_params.multi_items() if k not in ("part", "v")
        ]
        url = f"{self.path}?{urlencode([*query, ('part', part), ('v', self._digest(inner))])}"
        attrs = f'id="live-{escape(part)}" class="live" hx-get="{escape(url)}" hx-swap="outerHTML"'
        if self.polling:
            attrs += f' hx-trigger="every {int(EVERY.get(part, 2))}s"'
        # `inner` is the output of an autoescaping template; every other value is escaped here.
        return Markup(f"<div {attrs}>{inner}</div>")  # noqa: S704

    def respond(self, template: str, status: int = 200) -> Response:
        """The page, or the polled region named by ?part= (204 when it did not change)."""
        part = self.request.query_params.get("part")
        if part is None:
            return html(env.get_template(template).render(self.context), status)
        if not part.replace("_", "").isalnum() or part not in PARTS.get(template, ()):
            return html("", 404)
        inner = env.get_template(f"parts/{part}.html").render(self.context)
        if self.request.query_params.get("v") == self._digest(inner):
            return Response(status_code=204, headers=SECURITY_HEADERS)
        return html(self._wrap(part, inner))


# The regions each page may be polled for.
PARTS: dict[str, tuple[str, ...]] = {
    "rotations.html": ("rotations_table",),
    "campaigns.html": ("campaigns_table",),
    "campaign.html": ("campaign_status", "campaign_actions"),
    "rotation.html": ("rotation_status", "rotation_actions", "at_risk"),
    "decisions.html": ("decisions_table",),
    "servers.html": ("servers_table",),
}
# Seconds between polls: the at-risk list asks the client-monitor for a whole list.
EVERY = {"at_risk": 10, "servers_table": 5, "decisions_table": 5}


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return html(env.get_template(template).render(context), status)
