"""The app-level values every transport of a replica needs, handed over as one object.

Transports take their own options (``MqttConfig``, ``RpcConfig``) plus this, so nothing
below the app imports the whole configuration; the app fills it from its configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from microdcs.core.limits import LimitsConfig
from microdcs.processing.expiry import DEFAULT_RESPONSE_EXPIRY_SECONDS


@dataclass(frozen=True, slots=True)
class ReplicaOptions:
    """Who this replica is and how much work each of its transports takes on."""

    #: Stable id of the replica (MQTT client id, response topic).
    instance_id: str
    #: CloudEvent ``source`` of the events the replica sends.
    source: str
    #: Concurrent message handlers per transport.
    workers: int = 64
    #: Received messages held waiting for a worker.
    queue_size: int = 512
    #: Time in-flight messages get to finish on shutdown (seconds).
    shutdown_grace: float = 10.0
    #: How long a message waits for Redis before it gets ``storage_unavailable`` (seconds).
    storage_retry_seconds: float = 30.0
    #: Maximum scope levels between a topic prefix and the intent.
    scope_levels: int = 3
    #: Message Expiry (s) of responses to requests without one, for processors without
    #: their own ``response_expiry_seconds``; 0: never expire.
    response_expiry_seconds: int = DEFAULT_RESPONSE_EXPIRY_SECONDS
    #: Subscribe to and process incoming events (False: only publish and await responses).
    is_processor_instance: bool = True
    limits: LimitsConfig = field(default_factory=LimitsConfig)
