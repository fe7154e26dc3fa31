"""`python -m certificates`: run the certificates service until SIGTERM or SIGINT."""

from certificates.bootstrap import build_runtime
from certificates.settings import Settings
from certrotate_shared.service_main import run_service_main

if __name__ == "__main__":
    run_service_main("certificates", Settings, build_runtime)
