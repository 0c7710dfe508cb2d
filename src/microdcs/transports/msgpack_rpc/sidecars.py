"""Equipment behind a sidecar: commands pushed to one named sidecar, answers back.

An equipment adapter (a sidecar that talks to a PLC) is not a processor the server routes
events to by type: its answers and events have whatever type the equipment uses. So it
gets a channel of its own beside ``publish``:

- ``[2, "command", [cloudevent]]``: a command (or cancel) for equipment the station
  configuration maps to this sidecar, pushed to the sidecar's connection on this replica.
- ``equipment(cloudevent)`` (request or notification): an answer or event of its
  equipment, handed to the runtime's equipment receiver (the SFC engine).

A sidecar is named by its grant (its entry in ``APP_RPC_TOKENS_FILE``; ``default``
without one). It implements :class:`~microdcs.equipment.ports.SidecarOutlet`
structurally: the transport imports no domain.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.eventformat import to_dict
from microdcs.transports.msgpack_rpc.connection import RpcConnection
from microdcs.transports.msgpack_rpc.errors import FORBIDDEN, INVALID_PARAMS, RpcError
from microdcs.transports.msgpack_rpc.methods import decode_event
from microdcs.transports.msgpack_rpc.protocol import FrameEncoder
from microdcs.transports.msgpack_rpc.server import MessagePackRpcHandler

logger = logging.getLogger(__name__)

#: Server -> sidecar notification: ``[cloudevent]``, a command or cancel for its equipment.
COMMAND: Final = "command"
#: Sidecar -> server method: ``[cloudevent]``, an answer or event of its equipment.
EQUIPMENT: Final = "equipment"

EquipmentCallback = Callable[[CloudEvent], Awaitable[None]]


class SidecarChannel:
    """Commands to named sidecars connected to this replica, their answers to a callback."""

    def __init__(self, handler: MessagePackRpcHandler) -> None:
        self._handler = handler
        self._encoder = FrameEncoder()
        self._callback: EquipmentCallback | None = None
        self.sent = 0
        self.received = 0
        handler.add_method(EQUIPMENT, self._equipment)

    def on_event(self, callback: EquipmentCallback) -> None:
        """Who gets every answer and event sidecars send through ``equipment``."""
        self._callback = callback

    def connected(self, sidecar: str) -> bool:
        return any(self._named(sidecar, None))

    def send(self, sidecar: str, event: CloudEvent) -> bool:
        """Push ``event`` to the sidecar's newest connection granted its subject; False
        when no such connection is open on this replica (nothing is sent)."""
        connections = list(self._named(sidecar, event.subject))
        if not connections:
            return False
        frame = self._encoder.notification(COMMAND, [to_dict(event, native_bytes=True)])
        connections[-1].push(frame)  # the newest: an older one is about to go away
        self.sent += 1
        return True

    def _named(self, sidecar: str, subject: str | None) -> list[RpcConnection]:
        return [
            c
            for c in self._handler.connections
            if c.grant is not None
            and c.grant.name == sidecar
            and (subject is None or c.grant.covers(subject))
        ]

    async def _equipment(self, connection: RpcConnection, params: list[Any]) -> Any:
        if len(params) != 1 or not isinstance(params[0], dict):
            raise RpcError(INVALID_PARAMS, "equipment takes (cloudevent)")
        event = decode_event(params[0])
        grant = connection.grant
        if grant is None or not grant.covers(event.subject):
            raise RpcError(FORBIDDEN, f"subject {event.subject!r} is outside this token's scopes")
        self.received += 1
        if self._callback is None:
            logger.warning("equipment event %s from a sidecar dropped: no receiver", event.type)
            return False
        await self._callback(event)
        return True
