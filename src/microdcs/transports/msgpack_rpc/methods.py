"""Parameter checks of the server's methods: pure, so they are tested without sockets.

Everything a sidecar can get wrong about *how* it called a method becomes an
:class:`RpcError` here, before the event reaches a processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from microdcs.core.cloudevent import MAX_ATTRIBUTE_LENGTH, CloudEvent
from microdcs.core.errors import InputError, PayloadDecodeError
from microdcs.core.eventformat import from_dict
from microdcs.processing.routing import Intent
from microdcs.transports.msgpack_rpc.errors import INVALID_PARAMS, RpcError

PUBLISH: Final = "publish"
HEARTBEAT: Final = "heartbeat"
#: Server -> client notification carrying an outgoing event: ``[cloudevent_dict, intent]``.
CLOUDEVENT: Final = "cloudevent"
#: Server -> client notification for a bad frame or notification that had no msgid.
ERROR: Final = "error"


@dataclass(frozen=True, slots=True)
class PublishCall:
    """The checked arguments of ``publish(cloudevent_dict, transportmetadata?)``."""

    event: dict[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    intent: Intent | None = None


def parse_publish(params: list[Any]) -> PublishCall:
    """Check the shape of publish's params; the event itself is checked by :func:`decode_event`."""
    if not 1 <= len(params) <= 2:
        raise RpcError(INVALID_PARAMS, "publish takes (cloudevent, transportmetadata?)")
    event = params[0]
    if not isinstance(event, dict):
        raise RpcError(INVALID_PARAMS, "the cloudevent must be a map")
    metadata = params[1] if len(params) == 2 and params[1] is not None else {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise RpcError(INVALID_PARAMS, "transportmetadata must be a map with string keys")
    intent: Intent | None = None
    if "intent" in metadata:
        try:
            intent = Intent(metadata["intent"])
        except ValueError:
            raise RpcError(
                INVALID_PARAMS, f"unknown intent {metadata['intent']!r} in transportmetadata"
            ) from None
    return PublishCall(event, metadata, intent)


def decode_event(raw: dict[str, Any], max_length: int = MAX_ATTRIBUTE_LENGTH) -> CloudEvent:
    """Build the CloudEvent; its input errors keep their ``kind`` (e.g. ``invalid_event``).

    ``max_length`` bounds every attribute value (``APP_LIMIT_ATTRIBUTE_LENGTH``).
    """
    try:
        return from_dict(raw, max_length=max_length)
    except InputError as error:
        raise RpcError(error.kind, error.message) from None
    except (TypeError, ValueError) as exc:  # data that cannot be re-encoded as its type
        raise RpcError(PayloadDecodeError.kind, f"data cannot be encoded: {exc}") from None


def heartbeat_result(params: list[Any]) -> Any:
    """A heartbeat sent as a request echoes its timestamp: a cheap liveness round trip."""
    return params[0] if params else None
