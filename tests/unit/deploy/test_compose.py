"""deploy/compose.yml (and its rehearsal overlay) as Docker Compose would read them: valid
against the Compose Specification, and each certrotate service given exactly its settings,
enough of them to start and find the others. No Docker engine here: checked offline."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.unit.deploy.environments import (
    DEPLOY,
    FOREIGN,
    REQUIRED,
    RESET,
    SETTINGS,
    interpolate,
    load_settings_from,
    load_yaml_documents,
    secret_values,
    setting_of,
)

COMPOSE = DEPLOY / "compose.yml"
REHEARSAL = DEPLOY / "compose.rehearsal.yml"


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema as check-jsonschema vendors it (from the
    compose-spec repository, schema/compose-spec.json)."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def load(*paths: Path) -> dict[str, Any]:
    """Several compose files merged as `docker compose -f a -f b` does for what we use:
    mappings merge key by key, scalars and lists of the later file win."""
    merged: dict[str, Any] = {}
    for path in paths:
        [document] = load_yaml_documents(path)
        merged = _merge(merged, document)
    return merged


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = {k: _merge(base[k], v) if k in base else v for k, v in (base | override).items()}
        return {k: v for k, v in merged.items() if v is not RESET}
    return override


def _without_resets(document: Any) -> Any:
    """An overlay as the schema sees it once compose has applied its `!reset`s."""
    if isinstance(document, dict):
        return {k: _without_resets(v) for k, v in document.items() if v is not RESET}
    return document


def environment(service: dict[str, Any], variables: dict[str, str]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so an overlay can merge it"
    return {key: interpolate(str(value), variables) for key, value in env.items()}


def certrotate_services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in project["services"].items() if name in SETTINGS}


@pytest.mark.parametrize("path", [COMPOSE, REHEARSAL], ids=lambda p: p.name)
def test_compose_files_follow_the_compose_specification(path: Path) -> None:
    [document] = load_yaml_documents(path)
    jsonschema.Draft202012Validator(compose_schema()).validate(_without_resets(document))


def test_a_misspelt_compose_key_is_caught_by_the_schema() -> None:
    [document] = load_yaml_documents(COMPOSE)
    document["services"]["orchestrator"]["healtcheck"] = document["services"]["orchestrator"][
        "healthcheck"
    ]
    with pytest.raises(jsonschema.ValidationError, match="healtcheck"):
        jsonschema.Draft202012Validator(compose_schema()).validate(document)


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, REHEARSAL)], ids=["compose", "rehearsal"])
def test_each_service_gets_exactly_its_settings_and_starts_with_them(
    files: tuple[Path, ...],
) -> None:
    project = load(*files)
    services = certrotate_services(project)
    assert set(services) == set(SETTINGS), "every certrotate service is in the compose file"
    secrets = secret_values()
    for name, spec in services.items():
        assert spec["command"] == ["serve", name]
        env = environment(spec, secrets)
        unknown = {v for v in env if v not in FOREIGN and setting_of(name, v) is None}
        assert not unknown, f"{name}: variables that set nothing (a typo?): {sorted(unknown)}"
        given = {setting_of(name, v) for v in env}
        assert REQUIRED[name] <= given, f"{name} lacks {sorted(REQUIRED[name] - given)}"
        settings = load_settings_from(name, env)
        assert settings.transport == "kafka"
        # The vault is one store every service reads: the same URL everywhere.
        assert settings.vault_url == settings.database_url


def test_compose_refuses_to_start_without_the_operators_secrets() -> None:
    """No default for a secret: compose stops with the variable's name instead of starting
    services that would refuse an empty key anyway."""
    project = load(COMPOSE)
    for name, spec in certrotate_services(project).items():
        for missing in ("CERTROTATE_MASTER_KEY", "CERTROTATE_INTERNAL_TOKEN"):
            given = {k: v for k, v in secret_values().items() if k != missing}
            with pytest.raises(KeyError, match=missing):
                environment(spec, given)
        if name == "orchestrator":
            given = secret_values()
            given.pop("CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN")
            with pytest.raises(KeyError, match="CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN"):
                environment(spec, given)


def _port(settings: Any) -> int:
    return int(settings.http_port)


def test_services_find_each_other_and_are_probed_on_readyz() -> None:
    project = load(COMPOSE)
    services = certrotate_services(project)
    secrets = secret_values()
    built = {
        name: load_settings_from(name, environment(spec, secrets))
        for name, spec in services.items()
    }
    orchestrator: Any = built["orchestrator"]
    assert orchestrator.certificates_url == f"http://certificates:{_port(built['certificates'])}"
    assert (
        orchestrator.client_monitor_url == f"http://client-monitor:{_port(built['client-monitor'])}"
    )
    for name, spec in services.items():
        settings: Any = built[name]
        assert settings.http_host == "0.0.0.0", f"{name} must listen beyond its own container"
        probe = " ".join(spec["healthcheck"]["test"])
        assert f"http://127.0.0.1:{_port(settings)}/readyz" in probe, (name, probe)
        assert settings.kafka_bootstrap == "kafka:19092"
        assert settings.database_url.startswith("postgresql")
        assert "@postgres:5432/" in settings.database_url
        infra = spec["depends_on"]
        assert infra["kafka"]["condition"] == infra["postgres"]["condition"] == "service_healthy"
    # The orchestrator starts once the workers it calls answer their readiness probe.
    assert {
        worker: {"condition": "service_healthy"}
        for worker in ("certificates", "replication", "client-monitor")
    }.items() <= services["orchestrator"]["depends_on"].items()


def test_the_twin_is_optional_and_the_rehearsal_overlay_shares_its_network() -> None:
    base = load(COMPOSE)
    assert base["services"]["twin"]["profiles"] == ["twin"]
    assert all("profiles" not in spec for spec in certrotate_services(base).values())
    project = load(COMPOSE, REHEARSAL)
    secrets = secret_values()
    built: dict[str, Any] = {
        name: load_settings_from(name, environment(spec, secrets))
        for name, spec in certrotate_services(project).items()
    }
    for name, spec in certrotate_services(project).items():
        # The twin's topology names its SEPM servers 127.0.0.1:<port>: the services must
        # see those ports on their own loopback.
        assert spec["network_mode"] == "service:twin", name
        assert "networks" not in spec and not spec.get("ports"), name
    assert (
        built["orchestrator"].certificates_url == f"http://127.0.0.1:{_port(built['certificates'])}"
    )
    assert built["orchestrator"].rehearsal is True
    ports = [_port(s) for s in built.values()]
    assert len(set(ports)) == len(ports), "one network namespace: one port per service"
