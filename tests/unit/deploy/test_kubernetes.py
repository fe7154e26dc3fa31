"""deploy/k8s/ as a cluster would take it: valid against the Kubernetes API schemas (those
kubernetes-validate bundles, strict: an unknown field is an error), two replicas of each
service probed on /readyz and /healthz, and each service's environment exactly its settings,
resolved from the ConfigMap and the Secret as the kubelet would. No cluster here."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any
from unittest import mock

import kubernetes_validate
import pytest
from sqlalchemy.engine import make_url

from certrotate_shared.settings import SettingsError, load_settings
from tests.unit.deploy.environments import (
    DEPLOY,
    FOREIGN,
    REQUIRED,
    SETTINGS,
    load_settings_from,
    load_yaml_documents,
    secret_values,
    setting_of,
)

K8S = DEPLOY / "k8s"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# The oldest Kubernetes release still commonly run, and the newest the package knows.
VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
SECRET_KEYS = {
    "CERTROTATE_MASTER_KEY",
    "CERTROTATE_INTERNAL_TOKEN",
    "CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN",
    "PGPASSWORD",
}


def applied_files() -> list[Path]:
    [kustomization] = load_yaml_documents(K8S / "kustomization.yaml")
    return [K8S / name for name in kustomization["resources"]]


def resources(*, with_secret: bool = False) -> list[dict[str, Any]]:
    files = applied_files() + ([SECRET_EXAMPLE] if with_secret else [])
    return [doc for path in files for doc in load_yaml_documents(path)]


def of_kind(kind: str, *, with_secret: bool = False) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for doc in resources(with_secret=with_secret)
        if doc["kind"] == kind
    }


def deployments() -> dict[str, dict[str, Any]]:
    return {name: d for name, d in of_kind("Deployment").items() if name in SETTINGS}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def resolved_environment(deployment: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env."""
    config_maps = {n: c["data"] for n, c in of_kind("ConfigMap").items()}
    secret_name = "certrotate-secrets"
    spec = container(deployment)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env |= config_maps[source["configMapRef"]["name"]]
        else:
            assert source["secretRef"]["name"] == secret_name
            env |= secret
    for item in spec.get("env", []):
        if "value" in item:
            # $(NAME) refers to a variable defined before it, as Kubernetes expands it.
            expand = lambda m: env.get(m[1], m[0])  # noqa: E731
            env[item["name"]] = re.sub(r"\$\((\w+)\)", expand, item["value"])
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:  # filled in by Kubernetes, e.g. the pod's own address
            env[item["name"]] = "10.0.0.7"
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[item["name"]] = config_maps[key["name"]][key["key"]]
        else:
            key = ref["secretKeyRef"]
            assert key["name"] == secret_name, item
            env[item["name"]] = secret[key["key"]]
    return env


def operator_secret() -> dict[str, str]:
    values = secret_values()
    return {key: values[key] for key in SECRET_KEYS}


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_are_valid_kubernetes_objects(version: str) -> None:
    documents = resources(with_secret=True)
    assert {d["kind"] for d in documents} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
    }
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misspelt_field_is_refused_by_the_schemas() -> None:
    deployment = deployments()["orchestrator"]
    container(deployment)["readinesProbe"] = container(deployment)["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_every_manifest_is_applied_but_the_secret_example() -> None:
    listed = {p.name for p in applied_files()}
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - listed == {SECRET_EXAMPLE.name}
    assert listed <= on_disk


def test_each_service_runs_twice_probed_on_readyz_and_healthz() -> None:
    found = deployments()
    assert set(found) == set(SETTINGS)
    services = of_kind("Service")
    budgets = {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: p
               for p in of_kind("PodDisruptionBudget").values()}  # fmt: skip
    for name, deployment in found.items():
        assert deployment["spec"]["replicas"] == 2
        spec = container(deployment)
        assert spec["args"] == ["serve", name]
        port = spec["ports"][0]["containerPort"]
        env = resolved_environment(deployment, operator_secret())
        settings: Any = load_settings_from(name, env)
        assert settings.http_port == port
        assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # One Service per Deployment, selecting its pods and sending to its port.
        service = services[name]
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == port
        # A node drain never takes both replicas at once.
        assert budgets[name]["spec"]["maxUnavailable"] == 1


def test_each_service_gets_exactly_its_settings_and_starts_with_them() -> None:
    services = of_kind("Service")
    built: dict[str, Any] = {}
    for name, deployment in deployments().items():
        env = resolved_environment(deployment, operator_secret())
        unknown = {v for v in env if v not in FOREIGN and setting_of(name, v) is None}
        assert not unknown, f"{name}: variables that set nothing (a typo?): {sorted(unknown)}"
        given = {setting_of(name, v) for v in env}
        assert REQUIRED[name] <= given, f"{name} lacks {sorted(REQUIRED[name] - given)}"
        built[name] = load_settings_from(name, env)
        assert built[name].vault_url == built[name].database_url
    # The orchestrator reaches its workers through their Services.
    for worker, field in (
        ("certificates", "certificates_url"),
        ("client-monitor", "client_monitor_url"),
    ):
        port = services[worker]["spec"]["ports"][0]["port"]
        assert getattr(built["orchestrator"], field) == f"http://{worker}:{port}"


def test_endpoints_are_configuration_and_credentials_are_secret() -> None:
    [config] = of_kind("ConfigMap").values()
    assert {"CERTROTATE_KAFKA_BOOTSTRAP", "CERTROTATE_DATABASE_URL"} <= set(config["data"])
    # No password in the database URL: it comes from the Secret as PGPASSWORD.
    for key in ("CERTROTATE_DATABASE_URL", "CERTROTATE_VAULT_URL"):
        assert make_url(config["data"][key]).password is None, key
    assert not set(config["data"]) & SECRET_KEYS
    for deployment in deployments().values():
        for item in container(deployment).get("env", []):
            if item["name"] in SECRET_KEYS:
                assert "secretKeyRef" in item["valueFrom"], item


def test_the_secret_example_cannot_be_applied_as_it_is() -> None:
    """Its values are placeholders: a service started with them refuses, naming the variable,
    rather than sealing the vault under a key from the repository."""
    [secret] = of_kind("Secret", with_secret=True).values()
    data = secret.get("stringData") or {
        k: base64.b64decode(v).decode() for k, v in secret["data"].items()
    }
    assert set(data) == SECRET_KEYS
    deployment = deployments()["orchestrator"]
    env = resolved_environment(deployment, data)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    with mock.patch.dict(os.environ, clean | env, clear=True), pytest.raises(SettingsError) as err:
        load_settings(SETTINGS["orchestrator"])
    assert "CERTROTATE_ORCHESTRATOR_MASTER_KEY" in str(err.value)
