"""How a client command reaches the API: --api/--token options, and API errors as exit codes."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
import httpx
from click.core import ParameterSource

from certrotate.api_client import (
    API_TOKEN_ENV,
    API_TOKEN_FILE_ENV,
    API_URL_ENV,
    DEFAULT_API_URL,
    ApiClient,
    ApiRefusedError,
    ApiUnavailableError,
    TokenMissingError,
    resolve_token,
)
from certrotate.client.exit_codes import EXIT_REFUSED, EXIT_UNAVAILABLE

F = TypeVar("F", bound=Callable[..., Any])

# What to do in CLI terms when the API refuses for these reasons.
HINTS = {
    "credentials_missing": "pass the SEPM account: --username NAME --password-file FILE",
    "unknown_site": "add it first: certrotate sites add NAME ... (see certrotate sites list)",
    "idempotency_key_reused": "use a new --idempotency-key for a new rotation",
}


def _fail(message: str, code: int) -> click.exceptions.Exit:
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)


def warn_about_exposure(url: str, *, token_on_command_line: bool) -> None:
    """Say so when the way the command was called lets others read the API token."""
    if token_on_command_line:
        click.echo(
            "warning: --token shows the API token to every user of this machine (ps, shell "
            f"history); use --token-file FILE or {API_TOKEN_FILE_ENV}",
            err=True,
        )
    parsed = urlsplit(url)
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname or ""):
        click.echo(
            f"warning: {parsed.hostname} is reached over plain http: the API token and "
            "everything sent travel unencrypted; use an https:// API URL",
            err=True,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _transport() -> httpx.BaseTransport | None:
    """A transport handed in by the caller's context (tests), else the network."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(dict) if ctx else None
    return obj.get("api_transport") if obj else None


def api_command(f: F) -> F:
    """Add --api/--token/--token-file, pass `api` (an ApiClient), map API errors to exit codes."""

    @click.option(
        "--api",
        "certrotate_api_url",
        envvar=API_URL_ENV,
        default=DEFAULT_API_URL,
        show_default=True,
        metavar="URL",
        help=f"The certrotate API (env {API_URL_ENV}).",
    )
    @click.option(
        "--token",
        metavar="TOKEN",
        help=f"API token (env {API_TOKEN_ENV}); prefer --token-file.",
    )
    @click.option(
        "--token-file",
        type=click.Path(dir_okay=False),
        help=f"File holding the API token (env {API_TOKEN_FILE_ENV}).",
    )
    @functools.wraps(f)
    def wrapper(
        *args: Any, certrotate_api_url: str, token: str | None, token_file: str | None, **kw: Any
    ) -> Any:
        ctx = click.get_current_context()
        given = ctx.meta.setdefault("certrotate.api", {})
        if isinstance(ctx.command, click.Group) and ctx.invoked_subcommand:
            # `tasks --token-file F confirm ID`: the subcommand uses what the group was given.
            given.update(token=token, token_file=token_file)
            if ctx.get_parameter_source("certrotate_api_url") != ParameterSource.DEFAULT:
                given["url"] = certrotate_api_url
            return None
        if ctx.get_parameter_source("certrotate_api_url") == ParameterSource.DEFAULT:
            certrotate_api_url = given.get("url", certrotate_api_url)
        token = token or given.get("token")
        token_file = token_file or given.get("token_file")
        warn_about_exposure(certrotate_api_url, token_on_command_line=bool(token))
        try:
            secret = resolve_token(token, token_file)
        except TokenMissingError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            with ApiClient(certrotate_api_url, secret, transport=_transport()) as api:
                return f(*args, api=api, **kw)
        except ApiRefusedError as exc:
            for error in exc.errors:
                if error.get("field"):
                    click.echo(f"  {error['field']}: {error.get('message')}", err=True)
            hint = HINTS.get(exc.code or "")
            raise _fail(str(exc) + (f"\nhint: {hint}" if hint else ""), EXIT_REFUSED) from None
        except ApiUnavailableError as exc:
            raise _fail(str(exc), EXIT_UNAVAILABLE) from None

    return wrapper  # type: ignore[return-value]
