"""Exceptions of the MessagePack-RPC transport, grouped by what the caller can do.

``RpcError``: the server answered and said no; fix the request. ``RpcConnectionError``:
no answer came (not connected, connection lost, timed out); retrying may work.
"""

from __future__ import annotations

from microdcs.core.errors import MicroDCSError, UnavailableError

#: Error kinds of the RPC layer itself (the ``kind`` of an error object). CloudEvent
#: kinds such as ``invalid_event`` and ``unknown_type`` come from :mod:`microdcs.core.errors`.
INVALID_FRAME = "invalid_frame"
INVALID_REQUEST = "invalid_request"
UNKNOWN_METHOD = "unknown_method"
INVALID_PARAMS = "invalid_params"
UNAUTHENTICATED = "unauthenticated"
PAYLOAD_TOO_LARGE = "payload_too_large"
INTERNAL_ERROR = "internal_error"
#: The sidecar's token does not grant the event's subject (see ``APP_RPC_TOKENS_FILE``).
FORBIDDEN = "forbidden"
#: ``authenticate`` refused unseen: the peer address is in its failed-token back-off.
AUTH_THROTTLED = "auth_throttled"
#: Sent (as an ``error`` notification) just before the server closes the connection.
AUTH_TIMEOUT = "auth_timeout"
IDLE_TIMEOUT = "idle_timeout"


class RpcError(MicroDCSError):
    """The server answered a call with an error object ``{"kind", "message"}``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    def to_wire(self) -> dict[str, str]:
        """The error object as it travels in a response."""
        return {"kind": self.kind, "message": self.message}

    @classmethod
    def from_wire(cls, error: object) -> RpcError:
        """Read an error object; tolerates servers that send a bare string or anything."""
        if isinstance(error, dict):
            kind = error.get("kind")
            message = error.get("message")
            return cls(
                kind if isinstance(kind, str) else INTERNAL_ERROR,
                message if isinstance(message, str) else repr(error),
            )
        if isinstance(error, str):
            return cls(INTERNAL_ERROR, error)
        return cls(INTERNAL_ERROR, repr(error))


class RpcAuthenticationError(RpcError):
    """The server refused the token; reconnecting with the same token cannot help."""


class RpcConnectionError(UnavailableError):
    """Not connected, or the connection was lost before the answer arrived."""

    kind = "rpc_unavailable"


class RpcTimeoutError(RpcConnectionError):
    """No answer within the call's timeout; the call may still have taken effect."""

    kind = "rpc_timeout"
