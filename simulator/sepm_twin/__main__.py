"""`python -m sepm_twin --scenario FILE [--host H] [--port N]`."""

from __future__ import annotations

import argparse

from sepm_twin.cli import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="sepm_twin", description="Run the SEPM twin.")
    parser.add_argument("--scenario", required=True, help="scenario file (YAML or JSON)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="control-plane port; 0 = any free")
    args = parser.parse_args()
    run(args.scenario, args.host, args.port)


if __name__ == "__main__":
    main()
