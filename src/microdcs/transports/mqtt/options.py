"""Client options from the ``APP_MQTT_*`` settings, for every MQTT client microdcs runs.

The runtime and the equipment simulator log in to the same broker with the same kind of
credentials and TLS settings; building their options in one place keeps a secured broker
(passwords, ACL, TLS) usable by both, and a new setting reaches both.
"""

from __future__ import annotations

import ssl
from typing import Any

from microdcs.app.config import MqttConfig
from microdcs.transports.mqtt.client import ClientOptions


def tls_context(mqtt: MqttConfig) -> ssl.SSLContext | None:
    """The TLS context of ``APP_MQTT_TLS*``, or ``None`` for plain TCP."""
    if not mqtt.tls:
        return None
    context = ssl.create_default_context(cafile=mqtt.tls_ca_file)
    if mqtt.tls_cert_file:
        context.load_cert_chain(mqtt.tls_cert_file, mqtt.tls_key_file)
    if mqtt.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def client_options(mqtt: MqttConfig, client_id: str, **overrides: Any) -> ClientOptions:
    """Broker address, login, TLS and keep-alive of ``mqtt``; ``overrides`` set the rest.

    ``overrides`` are :class:`ClientOptions` fields a client chooses for itself (session
    handling, receive maximum), not connection settings.
    """
    values: dict[str, Any] = {
        "host": mqtt.hostname,
        "port": mqtt.port,
        "client_id": client_id,
        "username": mqtt.username,
        "password": mqtt.password,
        "ssl_context": tls_context(mqtt),
        "keepalive": mqtt.keepalive,
    }
    values.update(overrides)
    return ClientOptions(**values)
