"""Where and how the client commands print: stdout for results, stderr for everything else."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.console import Console, OverflowMethod
from rich.table import Table

from certrotate.render import add_plain_row

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


# What the commands print comes from operators, SEPM and the API: never read it as markup (a
# task title `[/bold]` would crash the command, `[link=...]` would dress up an instruction).
# Styling is given as Text styles instead.


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def stdout_console() -> Console:
    # Piped into a file or a pager, tables get room instead of the 80 columns of a dumb tty.
    console = Console(highlight=False, markup=False)
    return console if console.is_terminal else Console(highlight=False, markup=False, width=160)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def print_result(
    value: dict[str, Any], *, as_json: bool, line: Callable[[dict[str, Any]], str]
) -> None:
    """What the API answered to a change: all of it as JSON, or one line of text."""
    if as_json:
        print_json(value)
    else:
        click.echo(line(value))


def print_items(
    items: list[dict[str, Any]],
    *,
    as_json: bool,
    columns: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[str]],
    overflow: OverflowMethod = "ellipsis",
) -> None:
    """A listing: the items as JSON, or a table with one row an item."""
    if as_json:
        print_json(items)
        return
    table = Table(box=None)
    for column in columns:
        table.add_column(column, overflow=overflow)
    for item in items:
        add_plain_row(table, *row(item))
    stdout_console().print(table)
