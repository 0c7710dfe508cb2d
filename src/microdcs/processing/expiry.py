"""How long a response may live: what is left of its request's expiry, else a default.

A response is worth delivering only while its requester still waits, and a requester
that gave its request a Message Expiry waits about that long; a response to a request
without one gets the processor's default, so that no answer sits in a broker queue for
an offline client forever. Transports apply this where they send responses (MQTT
Response Topic, RPC result); status events and retained state are not responses and
keep their own expiry (retained state must not expire early).

The transports compute one value per request, not per response: the request's arrival
time is already kept for the queue's expiry check, so a response costs one subtraction
(requests with an expiry) or one attribute lookup (those without).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from microdcs.core.cloudevent import EXPIRY_INTERVAL, CloudEvent

if TYPE_CHECKING:
    from microdcs.processing.processor import CloudEventProcessor

#: Runtime-wide default Message Expiry (s) of responses (``APP_RESPONSE_EXPIRY_SECONDS``).
DEFAULT_RESPONSE_EXPIRY_SECONDS: Final = 60


def remaining_seconds(request_expiry: int, elapsed: float) -> int:
    """What is left of a request's expiry after ``elapsed`` seconds: whole seconds, at
    least 1 (MQTT has no zero expiry, and an answer at the last moment is still worth one).
    """
    left = int(request_expiry - elapsed)
    return left if left > 1 else 1


def default_seconds(processor: CloudEventProcessor | None, runtime_default: int) -> int | None:
    """The expiry of a response to a request that carries none (``None``: never expires).

    The processor's ``response_expiry_seconds`` if it sets one, else the runtime's.
    """
    own = None if processor is None else processor.response_expiry_seconds
    seconds = runtime_default if own is None else own
    return seconds if seconds > 0 else None


def with_expiry(event: CloudEvent, seconds: int | None) -> CloudEvent:
    """``event`` with ``expiryinterval`` set to ``seconds`` unless it has its own
    (whoever built it chose that, like the inbox for its ``expired`` answers).

    A copy: the event may be the one recorded for dedupe, whose replay to a later copy
    of the request must get that copy's expiry, not this one's.
    """
    own = event.expiryinterval
    if seconds is None or (own is not None and own > 0):
        return event
    return dataclasses.replace(event, extensions={**event.extensions, EXPIRY_INTERVAL: seconds})
