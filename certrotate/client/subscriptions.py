"""`certrotate subscriptions`: signed callbacks to an ITSM tool (admin role)."""

from __future__ import annotations

from typing import Any

import click

from certrotate import render
from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import json_option, print_items, print_json, stderr_console

EVENT_TYPES = (
    "rotation.paused", "rotation.awaiting_approval", "rotation.completed",
    "rotation.compensated", "rotation.failed", "exposure.exceeded", "site.at_risk",
)  # fmt: skip


@click.group()
def subscriptions() -> None:
    """Callbacks signed with Standard Webhooks, sent when rotations change (admin role)."""


@subscriptions.command(name="add")
@click.argument("url")
@click.option(
    "--event", "events", multiple=True, type=click.Choice(EVENT_TYPES),
    help="An event to hear about (repeat it); default: all of them.",
)  # fmt: skip
@click.option("--site", default=None, help="Only rotations of this site.")
@click.option("--change-id", default=None, help="Only rotations of this change record.")
@click.option("--description", default="", help="Who receives (e.g. 'ServiceNow prod').")
@json_option
@api_command
def subscriptions_add(
    api: ApiClient,
    url: str,
    events: tuple[str, ...],
    site: str | None,
    change_id: str | None,
    description: str,
    as_json: bool,
) -> None:
    """Subscribe URL (https); the signing secret is printed once (stdout)."""
    created = api.post(
        "/v1/subscriptions",
        {"url": url, "event_types": list(events or EVENT_TYPES), "site": site,
         "change_id": change_id, "description": description},
    )  # fmt: skip
    if as_json:
        print_json(created)
        return
    stderr_console().print(
        f"subscription {created['id']} to {url}; its signing secret is shown only this once:"
    )
    click.echo(created["secret"])


@subscriptions.command(name="list")
@json_option
@api_command
def subscriptions_list(api: ApiClient, as_json: bool) -> None:
    """Every subscription (never its secret)."""
    print_items(
        api.get("/v1/subscriptions")["items"],
        as_json=as_json,
        columns=("id", "url", "events", "site", "change", "created"),
        row=lambda s: [
            str(s["id"]), str(s["url"]), str(len(s["event_types"])), str(s.get("site") or ""),
            str(s.get("change_id") or ""), render.short_time(s.get("created_at")),
        ],
    )  # fmt: skip


@subscriptions.command(name="remove")
@click.argument("subscription_id")
@api_command
def subscriptions_remove(api: ApiClient, subscription_id: str) -> None:
    """Stop the callbacks; pending ones are dropped (marked failed)."""
    api.delete(f"/v1/subscriptions/{subscription_id}")
    click.echo(f"subscription {subscription_id} removed")


@subscriptions.command(name="deliveries")
@click.argument("subscription_id")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), default=None)
@json_option
@api_command
def subscriptions_deliveries(
    api: ApiClient, subscription_id: str, status: str | None, as_json: bool
) -> None:
    """The callbacks of a subscription, oldest first, with their last attempt."""
    params: dict[str, Any] = {"status": status} if status else {}
    items = api.get(f"/v1/subscriptions/{subscription_id}/deliveries", **params)["items"]
    print_items(
        items,
        as_json=as_json,
        columns=("id", "event", "rotation", "status", "attempts", "last answer", "created"),
        row=lambda d: [
            str(d["id"]), str(d["event_type"]), str(d.get("rotation_id") or ""),
            str(d["status"]), str(d["attempts"]),
            str(d.get("last_status_code") or d.get("last_error") or ""),
            render.short_time(d.get("created_at")),
        ],
    )  # fmt: skip


@subscriptions.command(name="redeliver")
@click.argument("subscription_id")
@click.argument("delivery_id", type=int)
@api_command
def subscriptions_redeliver(api: ApiClient, subscription_id: str, delivery_id: int) -> None:
    """Send a delivered or failed callback again (same webhook-id)."""
    api.post(f"/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver")
    click.echo(f"delivery {delivery_id} queued again")
