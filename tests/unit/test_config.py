"""Configuration from ``APP_*`` variables: defaults, conversion, errors, round trip."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from microdcs.app.config import (
    AppConfig,
    MqttConfig,
    RedisConfig,
    RpcConfig,
    iter_settings,
    load_config,
    to_environment,
)
from microdcs.core.errors import ConfigurationError


def _leaf_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    result = []
    for f in dataclasses.fields(cls):
        if "env" in f.metadata:
            result.append(f)
        else:
            result.extend(_leaf_fields(f.default_factory))  # type: ignore[misc, arg-type]
    return result


def test_an_empty_environment_gives_the_defaults() -> None:
    assert load_config({}) == AppConfig()


def test_documented_defaults() -> None:
    config = load_config({})
    assert config.jobs_prefix == "app/jobs"
    assert config.scope_levels == 3
    assert config.mqtt.port == 1883
    assert config.mqtt.session_expiry > 0
    assert config.mqtt.username is None


def test_unrelated_variables_are_ignored() -> None:
    assert load_config({"PATH": "/bin", "APP_UNKNOWN": "x"}) == AppConfig()


def test_integers_are_converted() -> None:
    assert load_config({"APP_MQTT_PORT": "8883"}).mqtt.port == 8883


def test_floats_are_converted() -> None:
    assert load_config({"APP_SHUTDOWN_GRACE_SECONDS": "2.5"}).shutdown_grace == 2.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_booleans_accept_the_usual_spellings(raw: str, expected: bool) -> None:
    assert load_config({"APP_MQTT_TLS": raw}).mqtt.tls is expected


def test_strings_are_taken_verbatim() -> None:
    assert load_config({"APP_JOBS_TOPIC_PREFIX": "site/jobs"}).jobs_prefix == "site/jobs"


def test_an_optional_string_is_set_from_its_variable() -> None:
    assert load_config({"APP_MQTT_USERNAME": "bob"}).mqtt.username == "bob"


def test_an_empty_optional_variable_means_unset() -> None:
    assert load_config({"APP_REDIS_PASSWORD": ""}).redis.password is None


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("APP_MQTT_PORT", "eighty"),
        ("APP_WORKERS", "1.5"),
        ("APP_SHUTDOWN_GRACE_SECONDS", "soon"),
        ("APP_MQTT_TLS", "maybe"),
        ("APP_RPC_ENABLED", ""),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({variable: raw})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("APP_MQTT_PORT", "0"),
        ("APP_MQTT_PORT", "65536"),
        ("APP_REDIS_PORT", "-1"),
        ("APP_MQTT_RECEIVE_MAXIMUM", "0"),
        ("APP_MQTT_TOPIC_ALIAS_MAXIMUM", "-1"),
        ("APP_MQTT_TOPIC_ALIAS_MAXIMUM", "65536"),
        ("APP_MQTT_SESSION_EXPIRY", "0"),
        ("APP_MQTT_KEEPALIVE", "0"),
        ("APP_MQTT_MAX_PAYLOAD_BYTES", "0"),
        ("APP_WORKERS", "0"),
        ("APP_QUEUE_SIZE", "0"),
        ("APP_SHUTDOWN_GRACE_SECONDS", "-1"),
        ("APP_TOPIC_SCOPE_LEVELS", "-1"),
        ("APP_TOPIC_SCOPE_LEVELS", "17"),
        ("APP_DEDUPE_TTL_SECONDS", "0"),
        ("APP_RPC_PORT", "70000"),
        ("APP_RPC_MAX_BUFFER_BYTES", "0"),
        ("APP_RPC_MAX_CONCURRENT_REQUESTS", "0"),
        ("APP_MQTT_SHARED_SUBSCRIPTION", "a/b"),
        ("APP_MQTT_INGRESS_LEASE_SECONDS", "0"),
        ("APP_INSTANCE_ID", "r+1"),
        ("APP_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_value_out_of_range_is_an_error_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({variable: raw})
    assert caught.value.variable == variable


def test_an_empty_shared_subscription_group_means_plain_subscriptions() -> None:
    assert load_config({"APP_MQTT_SHARED_SUBSCRIPTION": ""}).mqtt.shared_subscription == ""


@pytest.mark.parametrize(
    "variable",
    [
        "APP_JOBS_TOPIC_PREFIX",
        "APP_EQUIPMENT_TOPIC_PREFIX",
        "APP_GREETING_TOPIC_PREFIX",
        "APP_MQTT_RESPONSE_TOPIC_BASE",
    ],
)
@pytest.mark.parametrize("raw", ["app/+", "/app"])
def test_an_invalid_topic_prefix_is_an_error_naming_the_variable(variable: str, raw: str) -> None:
    # Caught at start-up under the variable's name, not later as TopicLayout's "prefix".
    with pytest.raises(ConfigurationError) as caught:
        load_config({variable: raw})
    assert caught.value.variable == variable


def test_rpc_tls_needs_both_certificate_and_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({"APP_RPC_TLS_CERT_FILE": "cert.pem"})
    assert caught.value.variable == "APP_RPC_TLS_KEY_FILE"


def test_mqtt_client_certificate_needs_a_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({"APP_MQTT_TLS_CERT_FILE": "cert.pem"})
    assert caught.value.variable == "APP_MQTT_TLS_KEY_FILE"


def test_the_source_defaults_to_microdcs_and_the_instance_id() -> None:
    assert load_config({"APP_INSTANCE_ID": "r1"}).resolved_source == "microdcs/r1"


def test_an_explicit_source_wins() -> None:
    assert load_config({"APP_SOURCE": "urn:x", "APP_INSTANCE_ID": "r1"}).resolved_source == "urn:x"


def test_an_explicit_instance_id_wins_over_the_host_name() -> None:
    assert load_config({"APP_INSTANCE_ID": "r7"}).resolved_instance_id == "r7"


def test_the_default_configuration_round_trips_through_the_environment() -> None:
    config = load_config({})
    assert load_config(to_environment(config)) == config


def test_a_changed_configuration_round_trips_through_the_environment() -> None:
    config = AppConfig(
        instance_id="r1",
        workers=3,
        shutdown_grace=0.5,
        is_publisher_instance=False,
        mqtt=MqttConfig(hostname="broker", port=8883, tls=True, username="u", password="p"),
        redis=RedisConfig(db=2, key_prefix="k"),
        rpc=RpcConfig(enabled=True, tls_cert_file="c.pem", tls_key_file="k.pem", token="t"),
    )
    assert load_config(to_environment(config)) == config


def test_to_environment_leaves_unset_optionals_out() -> None:
    assert "APP_MQTT_USERNAME" not in to_environment(AppConfig())


def test_to_environment_writes_booleans_as_true_and_false() -> None:
    env = to_environment(AppConfig(mqtt=MqttConfig(tls=True)))
    assert (env["APP_MQTT_TLS"], env["APP_RPC_ENABLED"]) == ("true", "false")


def test_iter_settings_covers_every_field_once() -> None:
    names = [env for env, *_ in iter_settings()]
    assert len(names) == len(set(names))
    assert set(names) == {f.metadata["env"] for f in _leaf_fields(AppConfig)}


def test_every_setting_is_documented_and_named_app() -> None:
    for env, _type, doc, _default in iter_settings():
        assert env.startswith("APP_")
        assert doc.strip()


def test_iter_settings_reports_the_defaults() -> None:
    settings = {env: default for env, _t, _d, default in iter_settings()}
    assert settings["APP_MQTT_PORT"] == 1883
    assert settings["APP_JOBS_TOPIC_PREFIX"] == "app/jobs"


def test_iter_settings_reports_the_types() -> None:
    types = {env: tp for env, tp, _d, _default in iter_settings()}
    assert types["APP_MQTT_PORT"] is int
    assert types["APP_MQTT_TLS"] is bool
    assert types["APP_SHUTDOWN_GRACE_SECONDS"] is float


def test_the_configuration_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        AppConfig().workers = 1  # type: ignore[misc]
