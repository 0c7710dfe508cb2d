"""The ``APP_MQTT_*`` settings, and client options from them for every MQTT client.

The runtime and the equipment simulator log in to the same broker with the same kind of
credentials and TLS settings; building their options in one place keeps a secured broker
(passwords, ACL, TLS) usable by both, and a new setting reaches both.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from microdcs.core.settings import setting
from microdcs.core.tls import client_tls_context
from microdcs.transports.mqtt.auth import DEFAULT_SAT_FILE, authenticator
from microdcs.transports.mqtt.client import ClientOptions
from microdcs.transports.mqtt.codec import WillMessage


@dataclass(frozen=True, slots=True)
class MqttConfig:
    hostname: str = setting("APP_MQTT_HOSTNAME", "localhost", "MQTT broker host name.")
    port: int = setting("APP_MQTT_PORT", 1883, "MQTT broker port.")
    username: str | None = setting("APP_MQTT_USERNAME", None, "MQTT user name.")
    password: str | None = setting("APP_MQTT_PASSWORD", None, "MQTT password.")
    tls: bool = setting("APP_MQTT_TLS", False, "Connect to the broker with TLS.")
    tls_ca_file: str | None = setting(
        "APP_MQTT_TLS_CA_FILE", None, "CA bundle to verify the broker (system CAs if unset)."
    )
    tls_cert_file: str | None = setting(
        "APP_MQTT_TLS_CERT_FILE", None, "Client certificate for mutual TLS."
    )
    tls_key_file: str | None = setting("APP_MQTT_TLS_KEY_FILE", None, "Client key for mutual TLS.")
    tls_insecure: bool = setting(
        "APP_MQTT_TLS_INSECURE",
        False,
        "Skip broker host name verification (the certificate is still checked against the "
        "CA; testing only).",
    )
    keepalive: int = setting("APP_MQTT_KEEPALIVE", 30, "MQTT keep-alive in seconds.")
    session_expiry: int = setting(
        "APP_MQTT_SESSION_EXPIRY",
        10,
        "Session Expiry Interval (s): how long the broker keeps a disconnected replica's "
        "session, and with it the replica's share of the shared subscription. Short, so a "
        "replica that died stops receiving within seconds; a replica that restarts within "
        "it gets what its session holds. Longer suits a single replica with a stable "
        "APP_INSTANCE_ID.",
    )
    receive_maximum: int = setting(
        "APP_MQTT_RECEIVE_MAXIMUM",
        256,
        "Unacknowledged QoS 1 messages the broker may send at once (back-pressure).",
    )
    shared_subscription: str = setting(
        "APP_MQTT_SHARED_SUBSCRIPTION",
        "microdcs",
        "Shared subscription group of the replicas. Empty: plain subscriptions, the request "
        "topics taken by one replica at a time (APP_MQTT_INGRESS_LEASE_SECONDS), as on a "
        "broker whose CONNACK says Shared Subscription Available = 0.",
    )
    response_topic_base: str = setting(
        "APP_MQTT_RESPONSE_TOPIC_BASE",
        "microdcs/responses",
        "Base of each replica's own response topic ({base}/{instance_id}).",
    )
    max_payload_bytes: int = setting(
        "APP_MQTT_MAX_PAYLOAD_BYTES",
        1_048_576,
        "Larger incoming payloads are rejected with 'payload_too_large'.",
    )
    end_session_on_shutdown: bool = setting(
        "APP_MQTT_END_SESSION_ON_SHUTDOWN",
        True,
        "After a complete graceful drain, leave the shared group and end the MQTT session, so "
        "a replica that does not come back (new pod name, scale-down) receives nothing. Set "
        "false for a single replica with a stable APP_INSTANCE_ID: its session then queues "
        "messages while it restarts.",
    )
    response_topic_allow: str = setting(
        "APP_MQTT_RESPONSE_TOPIC_ALLOW",
        "",
        "Comma-separated MQTT topic filters a request's Response Topic must match (e.g. "
        "'mes/+/responses,mes/+/responses/#'). Empty: any valid topic. Topics under the "
        "runtime's own prefixes and response topics are always refused.",
    )
    publish_attempts: int = setting(
        "APP_MQTT_PUBLISH_ATTEMPTS",
        5,
        "Connections a QoS 1 publish of ours may be sent on without the broker "
        "acknowledging it; then it is dropped (logged, counted) so a message the broker "
        "refuses by disconnecting cannot keep the replica offline.",
    )
    max_unacked_publishes: int = setting(
        "APP_MQTT_MAX_UNACKED_PUBLISHES",
        8192,
        "Publishes of ours awaiting the broker's PUBACK at which workers take no new "
        "request until half of them are acknowledged: responses to a slow broker stay "
        "bounded (and below MQTT's 65,535 packet identifiers). At most twice the broker's "
        "Receive Maximum applies: beyond its window a publish only waits in our memory.",
    )
    reconnect_max_seconds: float = setting(
        "APP_MQTT_RECONNECT_MAX_SECONDS", 10.0, "Upper bound of the reconnect back-off."
    )
    topic_alias_maximum: int = setting(
        "APP_MQTT_TOPIC_ALIAS_MAXIMUM",
        16,
        "Topic aliases the broker may set per connection (announced in CONNECT): it may "
        "then send a repeated topic as a two-byte alias. 0: the broker sends full topics.",
    )
    ingress_lease_seconds: float = setting(
        "APP_MQTT_INGRESS_LEASE_SECONDS",
        5.0,
        "Without shared subscriptions (the broker offers none, or "
        "APP_MQTT_SHARED_SUBSCRIPTION is empty) one replica at a time subscribes the "
        "request topics, elected through a Redis lease of this many seconds: a standby "
        "takes over within it when the holder dies or loses the broker.",
    )
    will_topic: str = setting(
        "APP_MQTT_WILL_TOPIC",
        "",
        "Topic of the Will message the broker publishes when the replica's connection ends "
        "without a DISCONNECT (crash, network loss, keep-alive timeout); '{client_id}' is "
        "replaced by the client id, e.g. 'microdcs/status/{client_id}' with a retained "
        "'offline' payload. Empty (the default): no Will.",
    )
    will_payload: str = setting(
        "APP_MQTT_WILL_PAYLOAD", "offline", "Payload (UTF-8 text) of the Will message."
    )
    will_qos: int = setting("APP_MQTT_WILL_QOS", 1, "QoS of the Will message (0, 1 or 2).")
    will_retain: bool = setting(
        "APP_MQTT_WILL_RETAIN",
        False,
        "Publish the Will retained: the topic then says 'offline' to late subscribers too, "
        "until something publishes there again (the runtime itself publishes no 'online' "
        "state).",
    )
    will_delay: int = setting(
        "APP_MQTT_WILL_DELAY",
        0,
        "Will Delay Interval (s): the broker waits this long before publishing the Will, "
        "and a reconnect within it cancels the Will (a short network glitch says nothing).",
    )
    auth_method: str = setting(
        "APP_MQTT_AUTH_METHOD",
        "",
        "Enhanced authentication (MQTT v5 AUTH): empty for none (user name and password "
        "only), or 'K8S-SAT' for Azure IoT Operations' MQTT broker: the Kubernetes "
        "service-account token of APP_MQTT_SAT_FILE is sent as Authentication Data, read "
        "anew on every connect, and a rotated token re-authenticates the open connection.",
    )
    sat_file: str = setting(
        "APP_MQTT_SAT_FILE",
        DEFAULT_SAT_FILE,
        "File of the Kubernetes service-account token (a projected volume with the "
        "broker's audience) for APP_MQTT_AUTH_METHOD=K8S-SAT; checked for rotation every "
        "10 s.",
    )


def tls_context(mqtt: MqttConfig) -> ssl.SSLContext | None:
    """The TLS context of ``APP_MQTT_TLS*``, or ``None`` for plain TCP."""
    return client_tls_context(
        mqtt.tls,
        ca_file=mqtt.tls_ca_file,
        cert_file=mqtt.tls_cert_file,
        key_file=mqtt.tls_key_file,
        check_hostname=not mqtt.tls_insecure,
    )


def will_message(mqtt: MqttConfig, client_id: str) -> WillMessage | None:
    """The Will of ``APP_MQTT_WILL_*`` for ``client_id`` (``None``: no Will topic set)."""
    if not mqtt.will_topic:
        return None
    return WillMessage(
        mqtt.will_topic.replace("{client_id}", client_id),
        mqtt.will_payload.encode(),
        qos=mqtt.will_qos,
        retain=mqtt.will_retain,
        delay=mqtt.will_delay,
    )


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
        "topic_alias_maximum": mqtt.topic_alias_maximum,
        "will": will_message(mqtt, client_id),
        "authenticator": authenticator(mqtt.auth_method, mqtt.sat_file),
    }
    values.update(overrides)
    return ClientOptions(**values)
