"""Equipment behind a sidecar over MessagePack-RPC, as an equipment port.

The station configuration maps an equipment ID to a sidecar by name; commands and
cancels for it go to that sidecar's connection (a ``command`` notification), and the
sidecar sends answers and events back through the ``equipment`` method, which reach the
same receiver as MQTT answers (the engine matches them through Redis).

A sidecar is connected to one replica. A command sent by a replica without that
connection is not lost: it stays awaited and is re-sent when overdue
(``APP_SFC_COMMAND_RESEND_SECONDS``) by whichever replica fires the re-send timer, and a
sidecar per replica (the usual pod layout: each replica's own adapter, one name) makes
every replica able to send.
"""

from __future__ import annotations

import logging

from microdcs.core.cloudevent import CloudEvent
from microdcs.equipment.contract import Cancel, Command, cancel_event, command_event, read_message
from microdcs.equipment.ports import SidecarOutlet
from microdcs.equipment.processor import Receiver

logger = logging.getLogger(__name__)


class SidecarEquipment:
    """Every sidecar's equipment: one :class:`SidecarPort` per sidecar name, one receiver."""

    def __init__(self, outlet: SidecarOutlet, *, source: str = "microdcs") -> None:
        self.outlet = outlet
        self.source = source
        self._receiver: Receiver | None = None
        self._ports: dict[str, SidecarPort] = {}

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def port(self, sidecar: str) -> SidecarPort:
        """The equipment port of the sidecar named ``sidecar``."""
        port = self._ports.get(sidecar)
        if port is None:
            port = self._ports[sidecar] = SidecarPort(self, sidecar)
        return port

    async def on_event(self, event: CloudEvent) -> None:
        """An answer or event a sidecar sent through the ``equipment`` method."""
        if self._receiver is None:
            logger.warning("sidecar equipment event %s dropped: no receiver", event.type)
            return
        await self._receiver(event.subject, read_message(event))


class SidecarPort:
    """The equipment port of one sidecar (answers come back through :class:`SidecarEquipment`)."""

    def __init__(self, equipment: SidecarEquipment, sidecar: str) -> None:
        self.equipment = equipment
        self.sidecar = sidecar
        self.sent = 0

    def set_receiver(self, receiver: Receiver) -> None:
        self.equipment.set_receiver(receiver)

    async def send_command(self, subject: str | None, command: Command) -> None:
        event = command_event(
            source=self.equipment.source,
            subject=subject,
            type_id=command.type_id,
            correlation_id=command.correlation_id,
            parameters=command.parameters,
            timeout_seconds=command.timeout_seconds,
        )
        self._send(event, command.correlation_id)

    async def send_cancel(self, subject: str | None, cancel: Cancel) -> None:
        event = cancel_event(
            source=self.equipment.source,
            subject=subject,
            correlation_id=cancel.correlation_id,
            reason=cancel.reason,
        )
        self._send(event, cancel.correlation_id)

    def _send(self, event: CloudEvent, correlation_id: str) -> None:
        if self.equipment.outlet.send(self.sidecar, event):
            self.sent += 1
        else:
            # Still awaited: re-sent when overdue, possibly by the replica it is connected to.
            logger.warning("sidecar %s is not connected to this replica: %s (%s) not sent",
                           self.sidecar, event.type, correlation_id)  # fmt: skip
