"""Passwords the client commands send: read from files or a hidden prompt, never from argv."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def read_secret_file(path: str, what: str) -> str:
    """The first line of a file (a password file may end with a newline)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=what) from None
    value = text.splitlines()[0] if text else ""
    if not value:
        raise click.BadParameter(f"{path} is empty", param_hint=what)
    return value


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def obtain_password(password_file: str | None, *, what: str, option: str) -> str:
    """From the file, else a hidden prompt on a terminal; never from the command line."""
    if password_file:
        return read_secret_file(password_file, option)
    if stdin_is_terminal():
        return str(click.prompt(what.capitalize(), hide_input=True))
    raise click.UsageError(f"{what} is needed: pass {option} FILE (or run on a terminal)")


def account_password(
    username: str | None,
    password_file: str | None,
    *,
    account: str,
    username_option: str,
    file_option: str,
) -> str | None:
    """The password of the account given with `username_option`; None when none is given."""
    if password_file and not username:
        raise click.UsageError(f"{file_option} goes with {username_option}")
    if not username:
        return None
    return obtain_password(
        password_file, what=f"password of the {account} account {username}", option=file_option
    )
