"""The `certrotate` command: run the product (demo, up, serve, sim) and drive it (rotate, status...)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

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


@main.group()
def vault() -> None:
    """The sealed secrets (SEPM and WinRM accounts, webhook secrets, certificate bundles)."""


@vault.command(name="rekey")
@click.option(
    "--certificates-database-url",
    envvar="CERTROTATE_CERTIFICATES_DATABASE_URL",
    help="The certificates service's database, to re-seal its stored bundles too.",
)
@click.option(
    "--certificates-schema",
    envvar="CERTROTATE_CERTIFICATES_DATABASE_SCHEMA",
    default="certificates",
    show_default=True,
)
def vault_rekey(certificates_database_url: str | None, certificates_schema: str) -> None:
    """Seal every secret again under CERTROTATE_MASTER_KEY (after a key rotation: the old key
    is in CERTROTATE_PREVIOUS_MASTER_KEYS until this has run)."""
    import asyncio

    from certrotate.rekey import RekeySettings, rekey
    from certrotate_shared.secretbox import SecretBoxError
    from certrotate_shared.settings import SettingsError, load_settings

    try:
        settings = load_settings(RekeySettings)
        done = asyncio.run(
            rekey(
                settings,
                certificates_url=certificates_database_url,
                certificates_schema=certificates_schema,
            )
        )
    except (SettingsError, SecretBoxError) as exc:
        click.echo(f"certrotate: vault rekey: {exc}", err=True)
        sys.exit(1)
    bundles = "" if done.bundles is None else f", bundles: {done.bundles}"
    click.echo(f"re-sealed under key {done.key_id}: vault entries: {done.vault_entries}{bundles}")


@main.command()
@click.option("--scenario", "scenario", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="Control-plane port (0 = any free).")
def sim(scenario: str, host: str, port: int) -> None:
    """Run the SEPM twin (simulator) from a scenario file until interrupted."""
    from sepm_twin.cli import run

    run(scenario, host=host, port=port)


@main.command()
@click.option("--exit", "exit_after", is_flag=True, help="Exit after the report.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on the last line.")
@click.option("--speed", default=7200.0, show_default=True, help="Simulated seconds per second.")
@click.option("--port", default=8080, show_default=True, help="API port (a free one if taken).")
@click.option("--data-dir", default="var/demo", show_default=True, type=click.Path(file_okay=False))
def demo(exit_after: bool, as_json: bool, speed: float, port: int, data_dir: str) -> None:
    """Rotate a simulated two-site fleet end to end (embedded mode, accelerated time)."""
    from pathlib import Path

    from certrotate.demo import run_demo
    from certrotate_shared import event_loop

    try:
        code = event_loop.run(
            run_demo(
                speed=speed,
                port=port,
                data_dir=Path(data_dir),
                keep_running=not exit_after,
                as_json=as_json,
            )
        )
    except event_loop.EventLoopError as exc:
        click.echo(f"certrotate: refusing to start: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


@main.command()
@click.option(
    "--mode",
    type=click.Choice(["embedded", "distributed"]),
    default="embedded",
    show_default=True,
    help="embedded: one process, SQLite; distributed: four processes, Kafka and PostgreSQL.",
)
@click.option("--port", default=8080, show_default=True, help="Orchestrator API port.")
@click.option(
    "--data-dir", default="var/embedded", show_default=True, type=click.Path(file_okay=False)
)
@click.option(
    "--follow-twin",
    "twin_url",
    metavar="URL",
    help="Rehearsal: run on the clock of the twin at URL (`certrotate sim`), read at start.",
)
def up(mode: str, port: int, data_dir: str, twin_url: str | None) -> None:
    """Run certrotate until interrupted, with the REST API on --port."""
    from certrotate.data_dir import MasterKeyMismatchError
    from certrotate.twin_clock import TwinClockError
    from certrotate_shared.event_loop import EventLoopError

    try:
        _up(mode, port, Path(data_dir), twin_url)
    except (MasterKeyMismatchError, TwinClockError, EventLoopError) as exc:
        click.echo(f"certrotate: refusing to start: {exc}", err=True)
        sys.exit(1)


def _up(mode: str, port: int, data_dir: Path, twin_url: str | None) -> None:
    from certrotate.stack import ClockSync
    from certrotate_shared import event_loop

    clock: ClockSync | None = None
    if twin_url:
        from certrotate.twin_clock import read_twin_clock

        clock = read_twin_clock(twin_url)
        click.echo(
            f"certrotate: following the twin's clock at {twin_url} ({clock.speed:g}x); "
            "restart to follow a later change of its speed",
            err=True,
        )
    if mode == "embedded":
        from certrotate.stack import run_embedded

        event_loop.run(run_embedded(data_dir, api_port=port, clock=clock))
    else:
        from certrotate.distributed import DEFAULT_PORTS, DistributedConfig, Supervisor, run

        config = DistributedConfig.from_environment(
            data_dir, ports=DEFAULT_PORTS | {"orchestrator": port}, clock=clock
        )

        def announce(supervisor: Supervisor) -> None:
            click.echo(
                f"certrotate (distributed) serving {supervisor.api_url}  (OpenAPI: "
                f"{supervisor.api_url}/docs; dashboard: {supervisor.api_url}/dashboard/; "
                f"admin token in {data_dir / 'secrets.json'}; "
                f"logs in {config.log_dir})"
            )

        sys.exit(run(config, on_ready=announce))


@main.command()
@click.argument("service", type=click.Choice(sorted(SERVICE_PACKAGES)))
def serve(service: str) -> None:
    """Run one service in this process (distributed mode; configured by CERTROTATE_* variables)."""
    sys.argv = [SERVICE_PACKAGES[service]]
    runpy.run_module(SERVICE_PACKAGES[service], run_name="__main__", alter_sys=True)


# --- API client commands (rotate, status, events, sites...): the certrotate/client/ package ---
from certrotate.client import register_client_commands  # noqa: E402

register_client_commands(main)
