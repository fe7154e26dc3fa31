"""`certrotate dlq`: messages a service parked in the DLQ, and their replay once fixed."""

from __future__ import annotations

import click
from rich.text import Text

from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import (
    json_option,
    print_json,
    print_result,
    stderr_console,
    stdout_console,
)
from certrotate.render import plain


@click.group(name="dlq")
def dlq() -> None:
    """Messages a service gave up on (parked in the DLQ); their rotation is paused."""


@dlq.command(name="list")
@click.option("--rotation", "rotation_id", help="Only this rotation's messages.")
@click.option(
    "--status",
    "letter_status",
    type=click.Choice(["parked", "replayed", "all"]),
    default="parked",
    show_default=True,
)
@json_option
@api_command
def list_dead_letters(
    api: ApiClient, rotation_id: str | None, letter_status: str, as_json: bool
) -> None:
    """The parked messages, oldest first."""
    items = api.get("/v1/dead-letters", rotation_id=rotation_id, status=letter_status)["items"]
    if as_json:
        print_json(items)
        return
    if not items:
        stderr_console().print("no parked messages")
        return
    console = stdout_console()
    for item in items:
        console.rule(plain(f"{item['id']} · {item['message_type']} · {item['service']}"))
        console.print(
            Text.assemble(
                f"rotation {item.get('rotation_id') or '-'}  ",
                (f"{item['attempts']} attempts", "dim"),
                f"  {item['topic']}[{item['partition']}]@{item['offset']}",
            )
        )
        console.print(Text(str(item["error"]), style="red"))
        if item.get("replayed_at"):
            console.print(Text(f"replayed {item['replayed_at']} by {item['replayed_by']}"))


@dlq.command(name="replay")
@click.argument("dead_letter_id")
@json_option
@api_command
def replay_dead_letter(api: ApiClient, dead_letter_id: str, as_json: bool) -> None:
    """Put a parked message back on its topic (once), after the cause was fixed."""
    print_result(
        api.post(f"/v1/dead-letters/{dead_letter_id}/replay", {}),
        as_json=as_json,
        line=lambda item: (
            f"{item['message_type']} {item['message_id']} re-published to {item['topic']}"
        ),
    )
