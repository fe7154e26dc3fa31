"""`python -m replication`: run the replication service until SIGTERM or SIGINT."""

from certrotate_shared.service_main import run_service_main
from replication.bootstrap import build_runtime
from replication.settings import Settings

if __name__ == "__main__":
    run_service_main("replication", Settings, build_runtime)
