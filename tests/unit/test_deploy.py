"""deploy/: Kubernetes manifests valid against the API schemas (offline), settings that exist.

kubernetes-validate ships the Kubernetes JSON schemas, so no cluster is needed. Docker is
not available where the tests run, so the Dockerfile is checked statically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from microdcs.config import iter_settings, load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.30.0"
SETTINGS = {env for env, _, _, _ in iter_settings()}
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def resources() -> Iterator[dict[str, Any]]:
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                yield document


def find(kind: str, name: str) -> dict[str, Any]:
    for resource in resources():
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes")


def microdcs_container() -> dict[str, Any]:
    pod = find("StatefulSet", "microdcs")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


def app_variables(node: Any) -> Iterator[str]:
    """Every APP_* name set anywhere in a YAML tree (keys, env names, compose env)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("APP_"):
                yield key
            if key == "name" and isinstance(value, str) and value.startswith("APP_"):
                yield value
            yield from app_variables(value)
    elif isinstance(node, list):
        for item in node:
            yield from app_variables(item)


def mosquitto_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and not line.startswith("persistence_location"):
            key, _, value = line.partition(" ")
            settings.setdefault(key, []).append(value)
    return settings


def test_there_are_manifests() -> None:
    kinds = {r["kind"] for r in resources()}
    assert {"ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    for resource in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_an_invalid_manifest() -> None:
    broken = find("StatefulSet", "microdcs")
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_app_variable_in_the_manifests_is_a_setting() -> None:
    used = set(app_variables(list(resources())))
    assert used, "the manifests set no APP_* variable"
    assert used - SETTINGS == set()


def test_every_app_variable_in_compose_is_a_setting() -> None:
    used = set(app_variables(compose()))
    assert used
    assert used - SETTINGS == set()


def test_the_configmap_is_a_valid_configuration() -> None:
    data = find("ConfigMap", "microdcs-config")["data"]
    config = load_config(data)
    assert config.http_port == 8080
    assert config.mqtt.end_session_on_shutdown is True


def test_probes_use_healthz_for_liveness_and_readyz_for_readiness() -> None:
    container = microdcs_container()
    data = find("ConfigMap", "microdcs-config")["data"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(data["APP_HTTP_PORT"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_replicas_have_resources_stable_ids_and_time_to_drain() -> None:
    statefulset = find("StatefulSet", "microdcs")
    pod = statefulset["spec"]["template"]["spec"]
    container = microdcs_container()
    grace = float(find("ConfigMap", "microdcs-config")["data"]["APP_SHUTDOWN_GRACE_SECONDS"])
    assert statefulset["spec"]["replicas"] >= 2
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert pod["terminationGracePeriodSeconds"] > grace
    (instance_id,) = [e for e in container["env"] if e["name"] == "APP_INSTANCE_ID"]
    assert instance_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_replicas_run_as_non_root() -> None:
    pod = find("StatefulSet", "microdcs")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert microdcs_container()["securityContext"]["allowPrivilegeEscalation"] is False


def test_a_disruption_budget_covers_the_replicas() -> None:
    budget = find("PodDisruptionBudget", "microdcs")
    labels = find("StatefulSet", "microdcs")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1


def test_redis_persists_with_an_append_only_file_on_a_volume() -> None:
    redis = find("StatefulSet", "redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert redis["spec"]["volumeClaimTemplates"]
    assert "--appendonly" in compose()["services"]["redis"]["command"]


def test_broker_settings_are_those_of_the_shipped_mosquitto_conf() -> None:
    shipped = mosquitto_settings((DEPLOY.parent / "mosquitto" / "mosquitto.conf").read_text())
    configmap = find("ConfigMap", "mosquitto-config")["data"]["mosquitto.conf"]
    composed = compose()["configs"]["mosquitto-conf"]["content"]
    assert mosquitto_settings(configmap) == shipped
    assert mosquitto_settings(composed) == shipped
    assert shipped["persistence"] == ["true"]
    assert "persistence_location /mosquitto/data/" in configmap
    broker = find("StatefulSet", "mosquitto")
    mounts = broker["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "data", "mountPath": "/mosquitto/data"} in mounts
    assert broker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_services_select_pods_that_exist() -> None:
    pod_labels = [
        r["spec"]["template"]["metadata"]["labels"]
        for r in resources()
        if r["kind"] == "StatefulSet"
    ]
    for service in (r for r in resources() if r["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), service


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            result.append((instruction.upper(), rest.strip()))
    return result


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    bases = [rest for instruction, rest in dockerfile_instructions() if instruction == "FROM"]
    assert len(bases) >= 2
    assert all(base.startswith("python:3.11-slim") for base in bases)
    assert any(
        instruction == "COPY" and rest.startswith("--from=")
        for instruction, rest in dockerfile_instructions()
    )


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for instruction, rest in dockerfile_instructions() if instruction == "USER"]
    assert users, "no USER instruction: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    last_from = max(i for i, (ins, _) in enumerate(dockerfile_instructions()) if ins == "FROM")
    last_user = max(i for i, (ins, _) in enumerate(dockerfile_instructions()) if ins == "USER")
    assert last_user > last_from


def test_dockerfile_starts_microdcs_run_and_checks_healthz() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["ENTRYPOINT"] == '["microdcs"]'
    assert instructions["CMD"] == '["run"]'
    assert "/healthz" in instructions["HEALTHCHECK"]


def test_dockerfile_environment_only_sets_existing_settings() -> None:
    env = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "ENV")
    used = set(re.findall(r"\b(APP_[A-Z0-9_]+)=", env))
    assert used
    assert used - SETTINGS == set()


def test_docker_build_context_includes_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for instruction, rest in dockerfile_instructions():
        if instruction == "COPY" and not rest.startswith("--from="):
            for source in rest.split()[:-1]:
                assert f"!{source.rstrip('/')}" in ignore.replace("/\n", "\n"), source
