"""Arguments for programs on a SEPM host (keytool, a replication recipe's tool).

Windows hands a program one command line, and the program splits it by the MSVC runtime's
rules; the java launcher behind keytool then takes any `-J...` element as a JVM option, which
is code execution as the WinRM account. So names that come from untrusted places (a JKS alias
read from an uploaded keystore, a replication partner's site name) must be plain, and every
argument is quoted by those rules. deploy/winrm/CertrotateCommon.ps1 has the same pattern
($script:CertrotateNamePattern) and the same quoting (ConvertTo-WindowsArgument); a unit test
holds the two together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from certrotate_shared.hostops.base import HostOperationError

# ASCII letters and digits (or a GUID's braces) first and last (never "-", so never "-J..."),
# and in between only what real aliases and site names use ("Site SEPMA1", "{GUID}",
# "le-2024.example.com").
# No quote, backslash, comma (keytool -list output), $, `, %, ;, &, |, <, > or control char.
# Unanchored: matched whole (fullmatch; PowerShell anchors it with ^(?:...)\z, since .NET's and
# Python's "$" both accept a trailing newline).
HOST_NAME_PATTERN = r"[A-Za-z0-9{](?:[A-Za-z0-9 ._@(){}-]{0,126}[A-Za-z0-9._@(){}-])?"
_HOST_NAME = re.compile(HOST_NAME_PATTERN)
ALLOWED = (
    "letters, digits, spaces and . _ - @ ( ) { }, starting with a letter, a digit or {, at most "
    "128 characters"
)

_BARE = re.compile(r'^[^\s"]+\Z')
_QUOTE_AFTER_BACKSLASHES = re.compile(r'(\\*)"')
_TRAILING_BACKSLASHES = re.compile(r"(\\+)\Z")


class UnsafeHostArgument(ValueError):
    """A name that must not reach a command line on the SEPM host."""


def check_host_name(value: str, *, what: str) -> str:
    """The name, if it is plain enough to pass to a program on the host; else refuse it."""
    if not _HOST_NAME.fullmatch(value):
        raise UnsafeHostArgument(
            f"{what} {value[:80]!r} is refused: it may hold only {ALLOWED} "
            "(it would be passed to a program on the SEPM server)"
        )
    return value


def checked_partner(partner: str) -> str:
    """A replication partner's site name fit for any driver; HostOperationError otherwise."""
    try:
        return check_host_name(partner, what="The replication partner site name")
    except UnsafeHostArgument as exc:
        raise HostOperationError(str(exc), code="UNSAFE_NAME") from None


def windows_quote(argument: str) -> str:
    """One argument as the MSVC runtime will split it back: quotes escaped, and the
    backslashes before a quote (or before the closing quote) doubled."""
    if "\x00" in argument:
        raise UnsafeHostArgument("an argument cannot hold a NUL character")
    if _BARE.match(argument):
        return argument
    escaped = _QUOTE_AFTER_BACKSLASHES.sub(r'\1\1\\"', argument)
    escaped = _TRAILING_BACKSLASHES.sub(r"\1\1", escaped)
    return f'"{escaped}"'


def windows_command_line(arguments: Iterable[str]) -> str:
    """The command-line tail a program receives as exactly these arguments."""
    return " ".join(windows_quote(a) for a in arguments)
