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

from microdcs.app.config import iter_settings, load_config

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


def redis_container() -> dict[str, Any]:
    pod = find("StatefulSet", "redis")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def test_redis_persists_with_an_append_only_file_on_a_volume() -> None:
    assert "--appendonly yes" in " ".join(redis_container()["args"])
    assert find("StatefulSet", "redis")["spec"]["volumeClaimTemplates"]
    assert "--appendonly yes" in " ".join(compose()["services"]["redis"]["entrypoint"])


def test_redis_fsyncs_before_it_acknowledges() -> None:
    """With ``everysec`` a Redis that crashes while an fsync is slow loses up to 2 s of
    writes it had already acknowledged (it postpones AOF writes, not replies): jobs the
    MES was told are stored. ``always`` writes and fsyncs each event-loop pass first."""
    for command in (
        " ".join(redis_container()["args"]),
        " ".join(compose()["services"]["redis"]["entrypoint"]),
    ):
        assert "--appendfsync always" in command


MOSQUITTO = DEPLOY.parent / "mosquitto"
#: Listener and TLS settings: where a broker listens, not how it treats messages.
LISTENER_KEYS = {"listener", "certfile", "keyfile", "cafile", "tls_version"}


def kubernetes_broker_conf() -> str:
    return str(find("ConfigMap", "mosquitto-config")["data"]["mosquitto.conf"])


def compose_file(config: str) -> Path:
    """The file a compose ``configs`` entry mounts."""
    return (DEPLOY / compose()["configs"][config]["file"]).resolve()


def test_broker_settings_are_those_of_the_shipped_production_conf() -> None:
    shipped = mosquitto_settings((MOSQUITTO / "mosquitto.prod.conf").read_text())
    without_listeners = {k: v for k, v in shipped.items() if k not in LISTENER_KEYS}
    configmap = mosquitto_settings(kubernetes_broker_conf())
    assert {k: v for k, v in configmap.items() if k not in LISTENER_KEYS} == without_listeners
    assert compose_file("mosquitto-conf") == MOSQUITTO / "mosquitto.prod.conf"
    assert shipped["persistence"] == ["true"]
    assert "persistence_location /mosquitto/data/" in kubernetes_broker_conf()
    broker = find("StatefulSet", "mosquitto")
    mounts = broker["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "data", "mountPath": "/mosquitto/data"} in mounts
    assert broker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_development_and_production_brokers_deliver_alike() -> None:
    """No QoS 1 message dropped by a queue limit, Nagle off, persistence: in both."""
    development = mosquitto_settings((MOSQUITTO / "mosquitto.conf").read_text())
    production = mosquitto_settings((MOSQUITTO / "mosquitto.prod.conf").read_text())
    keys = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages",
            "set_tcp_nodelay", "persistence", "autosave_interval")  # fmt: skip
    assert {k: development[k] for k in keys} == {k: production[k] for k in keys}
    assert production["max_queued_messages"] == ["0"]
    assert production["set_tcp_nodelay"] == ["true"]


def test_the_development_broker_listens_on_loopback_only(tmp_path: Path) -> None:
    from microdcs.app.devstack import LocalMosquitto

    shipped = mosquitto_settings((MOSQUITTO / "mosquitto.conf").read_text())
    local = mosquitto_settings(LocalMosquitto(tmp_path).config_path.read_text())
    for settings in (shipped, local):
        assert settings["listener"], "no listener: Mosquitto 2 would pick one itself"
        for listener in settings["listener"]:
            assert listener.split()[1:] == ["127.0.0.1"], listener


def production_broker_confs() -> dict[str, str]:
    return {
        "mosquitto.prod.conf": (MOSQUITTO / "mosquitto.prod.conf").read_text(),
        "kubernetes": kubernetes_broker_conf(),
        "compose": compose_file("mosquitto-conf").read_text(),
    }


@pytest.mark.parametrize("name", production_broker_confs())
def test_production_brokers_require_a_password_and_apply_the_acl(name: str) -> None:
    settings = mosquitto_settings(production_broker_confs()[name])
    assert settings["allow_anonymous"] == ["false"]
    assert settings["per_listener_settings"] == ["false"]  # one rule for every listener
    assert settings["password_file"] == ["/mosquitto/auth/passwd"]
    assert settings["acl_file"] == ["/mosquitto/config/acl"]


def test_only_the_loopback_development_broker_allows_anonymous_clients() -> None:
    confs = [*MOSQUITTO.glob("*.conf"), *DEPLOY.rglob("*.yaml")]
    anonymous = [
        p.name for p in confs if re.search(r"^\s*allow_anonymous\s+true", p.read_text(), re.M)
    ]
    assert anonymous == ["mosquitto.conf"]


def test_the_shipped_acl_is_mounted_where_the_brokers_read_it() -> None:
    acl = (MOSQUITTO / "acl").read_text()
    assert find("ConfigMap", "mosquitto-config")["data"]["acl"] == acl
    mounts = find("StatefulSet", "mosquitto")["spec"]["template"]["spec"]["containers"][0][
        "volumeMounts"
    ]
    assert {"name": "config", "mountPath": "/mosquitto/config", "readOnly": True} in mounts
    assert compose_file("mosquitto-acl") == MOSQUITTO / "acl"
    targets = {c["source"]: c["target"] for c in compose()["services"]["mosquitto"]["configs"]}
    assert targets["mosquitto-acl"] == "/mosquitto/config/acl"


def test_the_kubernetes_broker_listens_with_tls_only() -> None:
    settings = mosquitto_settings(kubernetes_broker_conf())
    assert settings["listener"] == ["8883"]
    assert settings["certfile"] == ["/mosquitto/certs/tls.crt"]
    assert settings["keyfile"] == ["/mosquitto/certs/tls.key"]
    pod = find("StatefulSet", "mosquitto")["spec"]["template"]["spec"]
    certs = next(v for v in pod["volumes"] if v["name"] == "certs")
    assert certs["secret"]["secretName"] == "mosquitto-tls"
    (service_port,) = find("Service", "mosquitto")["spec"]["ports"]
    assert service_port["port"] == 8883
    data = find("ConfigMap", "microdcs-config")["data"]
    config = load_config(data)
    assert (config.mqtt.tls, config.mqtt.port, config.mqtt.tls_insecure) == (True, 8883, False)
    assert config.mqtt.tls_ca_file == "/etc/microdcs/mqtt-ca/ca.crt"
    mounts = {m["name"]: m["mountPath"] for m in microdcs_container()["volumeMounts"]}
    assert mounts["mqtt-ca"] == "/etc/microdcs/mqtt-ca"


def secret_env(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{variable: (secret, key)}`` of a container's environment."""
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_kubernetes_redis_requires_the_password_the_replicas_use() -> None:
    redis = redis_container()
    script = " ".join(redis["args"])
    assert 'requirepass "$REDIS_PASSWORD"' in script
    assert "$REDIS_PASSWORD" not in " ".join(redis["command"])  # not in the process list
    credential = ("microdcs-credentials", "redis-password")
    assert secret_env(redis)["REDIS_PASSWORD"] == credential
    assert secret_env(redis)["REDISCLI_AUTH"] == credential  # the probes authenticate
    assert secret_env(microdcs_container())["APP_REDIS_PASSWORD"] == credential
    assert redis["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]


def test_kubernetes_replicas_log_in_as_the_runtime_role() -> None:
    data = find("ConfigMap", "microdcs-config")["data"]
    assert data["APP_MQTT_USERNAME"] == "runtime"
    assert secret_env(microdcs_container())["APP_MQTT_PASSWORD"] == (
        "microdcs-credentials",
        "mqtt-runtime-password",
    )
    pod = find("StatefulSet", "mosquitto")["spec"]["template"]["spec"]
    credentials = next(v for v in pod["volumes"] if v["name"] == "credentials")["secret"]
    assert credentials["secretName"] == "microdcs-credentials"
    assert {i["path"]: i["key"] for i in credentials["items"]} == {
        role: f"mqtt-{role}-password" for role in acl_users()
    }
    (init,) = pod["initContainers"]
    assert "mosquitto_passwd -b /mosquitto/auth/passwd" in init["args"][0]


def test_compose_takes_every_secret_from_the_env_file_and_commits_none() -> None:
    services = compose()["services"]
    replica = services["microdcs-1"]["environment"]
    required = re.compile(r"^\$\{MICRODCS_[A-Z_]+_PASSWORD:\?[^}]+\}$")
    assert required.match(replica["APP_MQTT_PASSWORD"])
    assert required.match(replica["APP_REDIS_PASSWORD"])
    assert replica["APP_MQTT_USERNAME"] == "runtime"
    for value in (*services["mosquitto"]["environment"].values(),
                  *services["redis"]["environment"].values()):  # fmt: skip
        assert required.match(value), value
    example = (DEPLOY / "compose.env.example").read_text()
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    assert {k for k in assigned if k.endswith("_PASSWORD")} == {
        "MICRODCS_MQTT_RUNTIME_PASSWORD", "MICRODCS_MQTT_MES_PASSWORD",
        "MICRODCS_MQTT_EQUIPMENT_PASSWORD", "MICRODCS_REDIS_PASSWORD",
    }  # fmt: skip
    assert set(assigned.values()) == {""}


def test_compose_publishes_ports_on_loopback_unless_told_otherwise() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("${MICRODCS_BIND_ADDRESS:-127.0.0.1}:"), (name, port)


# -- the ACL, checked against the runtime's own topic layout ------------------------------


def acl_grants() -> dict[str, list[tuple[str, str]]]:
    """``{user: [(access, topic pattern)]}`` of mosquitto/acl."""
    grants: dict[str, list[tuple[str, str]]] = {}
    user = None
    for line in (MOSQUITTO / "acl").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
            grants[user] = []
        else:
            assert words[0] == "topic" and user is not None, line
            assert len(words) == 3, f"give the access explicitly: {line}"
            grants[user].append((words[1], words[2]))
    return grants


def acl_users() -> list[str]:
    return list(acl_grants())


def _covers(pattern: str, topic: str) -> bool:
    """An ACL pattern covers a topic or subscription filter (``+`` one level, ``#`` rest)."""
    parts, levels = pattern.split("/"), topic.split("/")
    for index, part in enumerate(parts):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(parts) == len(levels)


def may(user: str, access: str, topic: str) -> bool:
    return any(
        granted in (access, "readwrite") and _covers(pattern, topic)
        for granted, pattern in acl_grants()[user]
    )


def runtime_topics() -> tuple[list[str], list[str]]:
    """Subscription filters and published topics of a replica with default settings."""
    from microdcs.app.config import AppConfig
    from microdcs.processing.routing import Direction, Intent
    from microdcs.transports.mqtt.topics import TopicLayout

    config = AppConfig(instance_id="microdcs-0")
    layouts = {
        config.jobs_prefix: Direction.NORTHBOUND,
        config.greeting_prefix: Direction.NORTHBOUND,
        config.equipment_prefix: Direction.SOUTHBOUND,
    }
    reads = [f"{config.mqtt.response_topic_base}/{config.resolved_instance_id}"]
    writes = ["mes/line-1/responses"]
    for prefix, direction in layouts.items():
        layout = TopicLayout(prefix, config.scope_levels)
        reads += layout.filters(direction.subscribes, None)
        for subject in (None, "a", "a.b", "a.b.c"):
            writes += [layout.topic(subject, intent) for intent in direction.publishes]
    jobs = TopicLayout(config.jobs_prefix, config.scope_levels)
    for subject in (None, "a", "a.b.c"):
        writes += [jobs.scoped(subject, "order", "J1"), jobs.scoped(subject, "result", "J1"),
                   jobs.scoped(subject, "state-index")]  # fmt: skip
    for prefix, direction in layouts.items():  # capability metadata and error events
        layout = TopicLayout(prefix, config.scope_levels)
        writes.append(layout.topic(None, Intent.METADATA))
        writes += [layout.topic(s, direction.error_intent) for s in (None, "a", "a.b.c")]
    return reads, writes


def test_the_acl_has_a_user_per_role() -> None:
    assert acl_users() == ["runtime", "mes", "equipment"]


def test_the_runtime_may_subscribe_and_publish_everything_it_does() -> None:
    reads, writes = runtime_topics()
    assert [f for f in reads if not may("runtime", "read", f)] == []
    assert [t for t in writes if not may("runtime", "write", t)] == []


@pytest.mark.parametrize(
    ("user", "access", "topic", "allowed"),
    [
        ("mes", "write", "app/jobs/commands", True),
        ("mes", "write", "app/jobs/ww/commands", True),
        ("mes", "write", "app/jobs/a/b/c/commands", True),
        ("mes", "write", "app/greeting/ww/commands", True),
        ("mes", "read", "app/jobs/+/events", True),
        ("mes", "read", "app/jobs/ww/order/#", True),
        ("mes", "read", "mes/line-1/responses", True),
        ("mes", "write", "app/equipment/ww/commands", False),
        ("mes", "write", "microdcs/responses/microdcs-0", False),
        ("mes", "write", "app/jobs/ww/events", False),
        ("mes", "write", "app/jobs/ww/order/J1", False),
        ("mes", "write", "app/jobs/ww/state-index", False),
        ("mes", "read", "app/equipment/ww/commands", False),
        ("mes", "read", "microdcs/responses/microdcs-0", False),
        ("equipment", "read", "app/equipment/ww/commands", True),
        ("equipment", "read", "app/equipment/a/b/c/commands", True),
        ("equipment", "write", "app/equipment/ww/events", True),
        ("equipment", "write", "app/equipment/a/b/c/data", True),
        ("equipment", "write", "app/equipment/metadata", True),
        ("equipment", "write", "app/jobs/ww/commands", False),
        ("equipment", "write", "app/equipment/ww/commands", False),
        ("equipment", "write", "microdcs/responses/microdcs-0", False),
        ("equipment", "write", "mes/line-1/responses", False),
        ("equipment", "read", "app/jobs/#", False),
        ("runtime", "read", "mes/line-1/responses", False),
    ],
)
def test_each_role_gets_what_it_needs_and_nothing_else(
    user: str, access: str, topic: str, allowed: bool
) -> None:
    assert may(user, access, topic) is allowed


@pytest.mark.parametrize("where", ["kubernetes", "compose"])
def test_replies_are_allowed_only_where_the_runtime_may_write(where: str) -> None:
    """Otherwise the broker refuses the reply, and Mosquitto disconnects the runtime."""
    if where == "kubernetes":
        allow = find("ConfigMap", "microdcs-config")["data"]["APP_MQTT_RESPONSE_TOPIC_ALLOW"]
    else:
        allow = compose()["services"]["microdcs-1"]["environment"]["APP_MQTT_RESPONSE_TOPIC_ALLOW"]
    patterns = [p.strip() for p in allow.split(",") if p.strip()]
    assert patterns
    assert all(may("runtime", "write", p) for p in patterns)


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
