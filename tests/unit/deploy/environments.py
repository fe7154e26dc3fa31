"""What a deployment file gives each certrotate service: its environment, resolved as Docker
Compose or Kubernetes would, and checked against the service's own settings class."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from certificates.settings import Settings as CertificatesSettings
from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.settings import ServiceSettings, env_prefix
from client_monitor.settings import Settings as ClientMonitorSettings
from orchestrator.settings import Settings as OrchestratorSettings
from replication.settings import Settings as ReplicationSettings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"

SETTINGS: dict[str, type[ServiceSettings]] = {
    "orchestrator": OrchestratorSettings,
    "replication": ReplicationSettings,
    "certificates": CertificatesSettings,
    "client-monitor": ClientMonitorSettings,
}

# Settings whose default cannot work once the services run on separate hosts: a secret, a
# database or vault of one's own (the SQLite default), a broker on 127.0.0.1, a listener
# nobody else can reach, or the orchestrator looking for its workers on localhost.
REQUIRED_EVERYWHERE = {
    "master_key",
    "internal_token",
    "database_url",
    "vault_url",
    "kafka_bootstrap",
    "http_host",
    "http_port",
}
REQUIRED = {name: set(REQUIRED_EVERYWHERE) for name in SETTINGS}
REQUIRED["orchestrator"] |= {"admin_token", "certificates_url", "client_monitor_url"}

# Variables that are not certrotate settings but are read by a library underneath: asyncpg
# (PostgreSQL's own convention) takes the password from PGPASSWORD when the URL has none, so
# the database URL can be plain configuration and the password a secret.
FOREIGN = {"PGPASSWORD", "POD_IP"}

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def secret_values() -> dict[str, str]:
    """Values an operator would generate (`certrotate keygen`): real-looking, never placeholders."""
    return {
        "CERTROTATE_MASTER_KEY": generate_master_key(),
        "CERTROTATE_INTERNAL_TOKEN": "internal-" + "a1" * 16,
        "CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN": "admin-" + "b2" * 16,
        "CERTROTATE_POSTGRES_PASSWORD": "pg-" + "c3" * 12,
        "PGPASSWORD": "pg-" + "c3" * 12,
    }


def setting_of(service: str, variable: str) -> str | None:
    """The settings field a variable sets for a service, or None when it sets nothing."""
    fields = SETTINGS[service].model_fields
    for prefix in (env_prefix(service), "CERTROTATE_"):
        if variable.startswith(prefix):
            name = variable.removeprefix(prefix).lower()
            if name in fields:
                return name
    return None


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, given the operator's values."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if variables.get(name):
            return variables[name]
        if op and op.endswith("-"):
            return arg
        if op and op.endswith("?"):
            raise KeyError(f"compose refuses to start: {name} is not set ({arg})")
        return ""

    return _INTERPOLATION.sub(one, value)


class Reset:
    """Compose's `!reset` tag: the overlay removes what the base file set."""

    def __repr__(self) -> str:
        return "!reset"


RESET = Reset()


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!reset", lambda loader, node: RESET)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_Loader) if doc]


def load_settings_from(service: str, environment: dict[str, str]) -> ServiceSettings:
    """The service's settings built from exactly this environment (nothing inherited)."""
    import os
    from unittest import mock

    clean = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    with mock.patch.dict(os.environ, clean | environment, clear=True):
        return SETTINGS[service]()
