"""`python -m orchestrator`: run the orchestrator until SIGTERM or SIGINT."""

from certrotate_shared.service_main import run_service_main
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings

if __name__ == "__main__":
    run_service_main("orchestrator", Settings, build_runtime)
