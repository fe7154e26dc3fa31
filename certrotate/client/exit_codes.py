"""The exit codes of the client commands: a script can rely on them."""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_ROTATION_FAILED = 4
EXIT_NEEDS_OPERATOR = 5
EXIT_INTERRUPTED = 130  # Ctrl-C while watching: the rotation itself goes on

EXIT_CODES_EPILOG = (
    "\b\nExit codes:\n"
    "  0  success (--wait/--watch/--follow: the rotation completed)\n"
    "  1  the API refused the request (4xx)\n"
    "  2  usage error\n"
    "  3  the API cannot be reached, or failed (5xx)\n"
    "  4  the rotation ended compensated or failed\n"
    "  5  the rotation waits for an operator (paused, decision, approval)\n"
    "  130  interrupted (Ctrl-C) while watching; the rotation goes on"
)
