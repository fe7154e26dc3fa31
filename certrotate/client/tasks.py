"""`certrotate tasks`: manual steps waiting for a person (the manual host-operation driver)."""

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


@click.group(invoke_without_command=True)
@click.option("--rotation", "rotation_id", help="Only this rotation's tasks.")
@click.option(
    "--status",
    "task_status",
    type=click.Choice(["open", "confirmed", "done", "all"]),
    help="Default: open and confirmed.",
)
@json_option
@api_command
def tasks(api: ApiClient, rotation_id: str | None, task_status: str | None, as_json: bool) -> None:
    """Manual steps waiting for a person (manual host-operation driver)."""
    items = list(api.pages("/v1/tasks", rotation_id=rotation_id, status=task_status))
    if as_json:
        print_json(items)
        return
    if not items:
        stderr_console().print("no operator tasks")
        return
    console = stdout_console()
    for task in items:
        where = task.get("server") or task.get("site")
        console.rule(plain(f"{task['task_id']} · {task['status']} · {where}"))
        console.print(
            Text.assemble(
                (str(task.get("title")), "bold"), f"  (rotation {task.get('rotation_id')})"
            )
        )
        if task.get("instructions"):
            console.print(plain(task["instructions"]))
        if task.get("verification"):
            console.print(Text(f"verified by: {task['verification']}", style="dim"))
        if task.get("last_failure"):
            console.print(
                Text(f"last confirmation not verified: {task['last_failure']}", style="red")
            )


@tasks.command(name="confirm")
@click.argument("task_id")
@click.option("--note", default="")
@json_option
@api_command
def confirm_task(api: ApiClient, task_id: str, note: str, as_json: bool) -> None:
    """Say the manual step is done; the service then checks it by observation."""
    print_result(
        api.post(f"/v1/tasks/{task_id}/confirm", {"note": note}),
        as_json=as_json,
        line=lambda task: f"task {task['task_id']}: {task['status']} (the service now verifies it)",
    )
