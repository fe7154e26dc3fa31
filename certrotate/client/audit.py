"""`certrotate audit`: who changed inventory, tokens, subscriptions and webhook sources (admin)."""

from __future__ import annotations

import click

from certrotate import render
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_items


@click.group()
def audit() -> None:
    """The audit log of admin changes (admin role)."""


@audit.command(name="list")
@click.option("--action", default=None, help="An action or its prefix (site., token.revoked).")
@click.option("--actor", default=None, help="Only changes by this token's name.")
@click.option("--after", type=int, default=0, show_default=True, help="Entries after this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
@json_option
@api_command
def audit_list(
    api: ApiClient, action: str | None, actor: str | None, after: int, limit: int, as_json: bool
) -> None:
    """Changes, oldest first."""
    page = api.get("/v1/audit", action=action, actor=actor, after=after, limit=limit)
    print_items(
        page["items"],
        as_json=as_json,
        columns=("id", "at", "actor", "action", "target"),
        row=lambda e: [str(e["id"]), render.short_time(e["at"]), str(e["actor"]),
                       str(e["action"]), str(e["target"])],
    )  # fmt: skip


@audit.command(name="export")
@click.option("--action", default=None, help="An action or its prefix.")
@click.option("--after", type=int, default=0, show_default=True, help="Entries after this id.")
@api_command
def audit_export(api: ApiClient, action: str | None, after: int) -> None:
    """The log as JSON lines on stdout (e.g. `> audit.jsonl`)."""
    response = api.request("GET", "/v1/audit/export", params={"action": action, "after": after})
    click.echo(response.text, nl=False)
