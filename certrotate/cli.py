"""The `certrotate` command: run the product (demo, up, serve, sim) and drive it (rotate, status...)."""

from __future__ import annotations

import runpy
import sys

import click

from certrotate_shared.secretbox import generate_master_key

SERVICE_PACKAGES = {
    "orchestrator": "orchestrator",
    "replication": "replication",
    "certificates": "certificates",
    "client-monitor": "client_monitor",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="certrotate")
def main() -> None:
    """Rotate SEPM server certificates without orphaning a single client.

    Start with `certrotate demo`: it rotates a simulated two-site fleet end to end.
    """


@main.command()
def keygen() -> None:
    """Print a new master key (for CERTROTATE_MASTER_KEY)."""
    click.echo(generate_master_key())


@main.command()
@click.option("--scenario", "scenario", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="Control-plane port (0 = any free).")
def sim(scenario: str, host: str, port: int) -> None:
    """Run the SEPM twin (simulator) from a scenario file until interrupted."""
    from sepm_twin.cli import run

    run(scenario, host=host, port=port)


@main.command()
@click.argument("service", type=click.Choice(sorted(SERVICE_PACKAGES)))
def serve(service: str) -> None:
    """Run one service in this process (distributed mode; configured by CERTROTATE_* variables)."""
    sys.argv = [SERVICE_PACKAGES[service]]
    runpy.run_module(SERVICE_PACKAGES[service], run_name="__main__", alter_sys=True)
