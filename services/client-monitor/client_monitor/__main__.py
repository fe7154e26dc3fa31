"""`python -m client_monitor`: run the client-monitor until SIGTERM or SIGINT."""

from certrotate_shared.service_main import run_service_main
from client_monitor.bootstrap import build_runtime
from client_monitor.settings import Settings

if __name__ == "__main__":
    run_service_main("client-monitor", Settings, build_runtime)
