"""`certrotate tokens`: API tokens (admin role)."""

from __future__ import annotations

from typing import Any

import click

from certrotate import render
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_items, print_json, stderr_console


@click.group()
def tokens() -> None:
    """API tokens (admin role)."""


@tokens.command(name="create")
@click.option("--name", required=True, help="Who or what uses it (e.g. itsm-integration).")
@click.option(
    "--role", required=True, type=click.Choice(["viewer", "operator", "approver", "admin"])
)
@click.option(
    "--expires-at",
    help="Refuse it from this instant on (ISO 8601 with a time zone, e.g. 2027-01-31T00:00Z).",
)
@json_option
@api_command
def tokens_create(
    api: ApiClient, name: str, role: str, expires_at: str | None, as_json: bool
) -> None:
    """Create a token; it is printed once (stdout), only its hash is kept."""
    body = {"name": name, "role": role}
    if expires_at:
        body["expires_at"] = expires_at
    token = api.post("/v1/tokens", body)
    if as_json:
        print_json(token)
        return
    stderr_console().print(
        f"token {token.get('id')} for {name} ({role}); it is shown only this once:"
    )
    click.echo(token["token"])


@tokens.command(name="list")
@json_option
@api_command
def tokens_list(api: ApiClient, as_json: bool) -> None:
    """Every token (never the token itself)."""
    print_items(
        list(api.pages("/v1/tokens")),
        as_json=as_json,
        columns=("id", "name", "role", "created", "expires", "revoked"),
        row=_token_row,
    )


def _token_row(token: dict[str, Any]) -> list[str]:
    return [
        str(token.get("id")),
        str(token.get("name")),
        str(token.get("role")),
        render.short_time(token.get("created_at")),
        render.short_time(token.get("expires_at")) if token.get("expires_at") else "",
        render.short_time(token.get("revoked_at")) if token.get("revoked_at") else "",
    ]


@tokens.command(name="revoke")
@click.argument("token_id")
@api_command
def tokens_revoke(api: ApiClient, token_id: str) -> None:
    """Revoke a token: it stops working at once (`bootstrap-admin`: the settings' admin token,
    once another admin token exists)."""
    api.delete(f"/v1/tokens/{token_id}")
    click.echo(f"token {token_id} revoked")
