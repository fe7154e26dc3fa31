"""`certrotate` commands that drive a running certrotate over its REST API.

Every command takes --api URL (env CERTROTATE_API_URL, default http://127.0.0.1:8080) and an
API token: --token-file FILE, --token TOKEN, or env CERTROTATE_API_TOKEN(_FILE).

Exit codes (a script can rely on them):
  0  success (`rotate --wait`, `status --watch`, `events --follow`: the rotation completed)
  1  the API refused the request (4xx: its title, detail and code are printed)
  2  usage error (bad or missing options, unreadable files)
  3  the API cannot be reached, timed out, or failed (5xx)
  4  the rotation ended compensated or failed
  5  the rotation waits for an operator: paused, a decision pending, or an approval needed
  130  Ctrl-C while watching or following (the rotation itself goes on)

While watching (--wait, --watch, --follow) an unavailable API is retried for 60 s before
the command gives up with 3, so a watch outlives a restart of the orchestrator.

Modules: connection (--api/--token, API errors as exit codes), exit_codes, output, passwords,
watch (following a rotation), rotate, rotations (status, events, list, at-risk), interventions
(approve, decide, pause, resume, cancel), sites, servers (the inventory), rehearsal (sites
import-twin), tasks, tokens, webhooks (webhook sources), dlq, subscriptions (callbacks), audit,
campaigns (multi-site campaigns), bundles (certificates uploaded once, named by id).
"""

from __future__ import annotations

import click

from certrotate.client.audit import audit
from certrotate.client.bundles import bundles
from certrotate.client.campaigns import campaign
from certrotate.client.dlq import dlq
from certrotate.client.exit_codes import EXIT_CODES_EPILOG
from certrotate.client.interventions import approve, cancel, decide, pause, resume
from certrotate.client.rehearsal import import_twin  # noqa: F401 - adds `sites import-twin`
from certrotate.client.rotate import rotate
from certrotate.client.rotations import at_risk, events, list_rotations, status
from certrotate.client.servers import servers
from certrotate.client.sites import sites
from certrotate.client.subscriptions import subscriptions
from certrotate.client.tasks import tasks
from certrotate.client.tokens import tokens
from certrotate.client.webhooks import webhooks

CLIENT_COMMANDS: list[click.Command] = [
    rotate,
    bundles,
    status,
    events,
    list_rotations,
    at_risk,
    approve,
    decide,
    pause,
    resume,
    cancel,
    tasks,
    sites,
    servers,
    tokens,
    webhooks,
    dlq,
    subscriptions,
    audit,
    campaign,
]


def register_client_commands(group: click.Group) -> None:
    """Add the API client commands to the `certrotate` group."""
    for command in CLIENT_COMMANDS:
        _add_epilog(command)
        group.add_command(command)


def _add_epilog(command: click.Command) -> None:
    """Every client command's --help ends with the exit codes."""
    command.epilog = command.epilog or EXIT_CODES_EPILOG
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_epilog(sub)
