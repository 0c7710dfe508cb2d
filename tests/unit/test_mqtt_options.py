"""Client options from the APP_MQTT_* settings, shared by the runtime and the simulator."""

from __future__ import annotations

import ssl

from microdcs.app.simulator import SimulatorSettings
from microdcs.transports.mqtt.options import MqttConfig, client_options, tls_context


def test_login_and_address_come_from_the_settings() -> None:
    mqtt = MqttConfig(hostname="broker", port=8883, username="equipment", password="pw")
    options = client_options(mqtt, "sim-1", clean_start=True)
    assert (options.host, options.port, options.client_id) == ("broker", 8883, "sim-1")
    assert (options.username, options.password) == ("equipment", "pw")
    assert options.clean_start is True
    assert options.ssl_context is None


def test_tls_verifies_the_broker_and_insecure_skips_only_the_host_name() -> None:
    verified = tls_context(MqttConfig(tls=True))
    assert verified is not None
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
    insecure = tls_context(MqttConfig(tls=True, tls_insecure=True))
    assert insecure is not None
    # As documented (and as for Redis): the chain is still checked against the CA.
    assert insecure.verify_mode == ssl.CERT_REQUIRED and not insecure.check_hostname


def test_the_simulator_uses_the_runtime_settings_when_given() -> None:
    mqtt = MqttConfig(hostname="broker", username="equipment", password="pw", tls=True)
    assert SimulatorSettings(mqtt=mqtt).broker is mqtt
    plain = SimulatorSettings(host="10.0.0.5", port=1884).broker
    assert (plain.hostname, plain.port) == ("10.0.0.5", 1884)
    assert (plain.username, plain.tls) == (None, False)
