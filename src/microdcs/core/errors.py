"""Public exception tree.

Grouped by what the caller can do about an error: fix the input (``InputError``),
wait and retry (``UnavailableError``), or fix the deployment (``ConfigurationError``).
Each input error carries a stable ``kind`` that becomes the ``mdcserrorkind`` extension
of an error response.
"""

from __future__ import annotations


class MicroDCSError(Exception):
    """Base class of every error raised by microdcs."""


class ConfigurationError(MicroDCSError):
    """The configuration is invalid; the message names the offending variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class InputError(MicroDCSError):
    """An incoming message cannot be accepted; the sender must fix it."""

    kind = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCloudEventError(InputError):
    """The envelope is not a valid CloudEvent (missing or malformed attribute)."""

    kind = "invalid_event"


class PayloadDecodeError(InputError):
    """The event data cannot be decoded with its content type."""

    kind = "invalid_payload"


class PayloadValidationError(InputError):
    """The event data decoded but does not match its model; names the field."""

    kind = "invalid_payload"

    def __init__(self, field: str | None, reason: str) -> None:
        where = f"field {field!r}" if field else "payload"
        super().__init__(f"{where}: {reason}")
        self.field = field
        self.reason = reason


class UnknownEventTypeError(InputError):
    """No processor bound to this transport handles the event type."""

    kind = "unknown_type"


class PayloadTooLargeError(InputError):
    """The message exceeds the configured maximum payload size."""

    kind = "payload_too_large"


class InvalidRequestError(InputError):
    """The request is well formed but inconsistent (e.g. subject and topic disagree)."""

    kind = "invalid_request"


class ExpiredRequestError(InputError):
    """The request's Message Expiry Interval ran out before it was processed."""

    kind = "expired"


class OutgoingEventError(MicroDCSError):
    """An event a processor produced cannot be sent on the wire (e.g. a wildcard topic,
    a control character or an oversized string); it is refused before the broker sees it."""

    kind = "invalid_outgoing"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidResponseTopicError(InputError):
    """The request names a Response Topic the runtime must not publish to."""

    kind = "invalid_response_topic"


class UnavailableError(MicroDCSError):
    """A dependency is down; waiting and retrying can succeed."""

    kind = "unavailable"


class StorageUnavailableError(UnavailableError):
    """Redis cannot be reached."""

    kind = "storage_unavailable"


class BrokerUnavailableError(UnavailableError):
    """The MQTT broker cannot be reached."""

    kind = "broker_unavailable"


class ResponseExpiredError(MicroDCSError):
    """An awaited response did not arrive before the request expired."""

    kind = "expired"
