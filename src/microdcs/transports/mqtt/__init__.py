"""MQTT v5 protocol handler (CloudEvents MQTT binding 1.0.2)."""

from microdcs.transports.mqtt.handler import MqttHandler

__all__ = ["MqttHandler"]
