"""`certrotate tasks`: manual steps waiting for a person (the manual host-operation driver)."""

from __future__ import annotations

import click

from certrotate.api_client import ApiClient
from certrotate.client.connection import api_command
from certrotate.client.output import (
    json_option,
    print_json,
    print_result,
    stderr_console,
    stdout_console,
)


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
    items = api.get("/v1/tasks", rotation_id=rotation_id, status=task_status)["items"]
    if as_json:
        print_json(items)
        return
    if not items:
        stderr_console().print("no operator tasks")
        return
    console = stdout_console()
    for task in items:
        console.rule(
            f"{task['task_id']} · {task['status']} · {task.get('server') or task.get('site')}"
        )
        console.print(f"[bold]{task.get('title')}[/bold]  (rotation {task.get('rotation_id')})")
        if task.get("instructions"):
            console.print(str(task["instructions"]))
        if task.get("verification"):
            console.print(f"[dim]verified by: {task['verification']}[/dim]")
        if task.get("last_failure"):
            console.print(f"[red]last confirmation not verified: {task['last_failure']}[/red]")


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
