"""The generic southbound processor: commands out, answers and events back to the engine.

It handles every CloudEvent type on ``{prefix}/{scope}/events|data|metadata`` (the shared
subscription, so any replica gets any answer) and hands it to a receiver, the SFC engine,
which matches it to the waiting action through Redis. Commands go out through the
:class:`~microdcs.equipment.ports.CommandOutlet` it is built with, their correlation id
in the CloudEvent and in the transport's correlation data, naming the shared events topic
as Response Topic: no answer depends on the replica that sent the command. Each command
also carries the W3C trace context of its send span (``traceparent``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

from microdcs.core.cloudevent import CloudEvent
from microdcs.equipment.contract import (
    CANCEL_TYPE,
    Cancel,
    Command,
    EquipmentMessage,
    cancel_event,
    command_event,
    read_message,
)
from microdcs.equipment.ports import CommandOutlet
from microdcs.processing.capabilities import Capabilities, EventTypeInfo
from microdcs.processing.processor import CloudEventProcessor, MessageContext
from microdcs.processing.routing import Direction

logger = logging.getLogger(__name__)

Receiver = Callable[[str | None, EquipmentMessage], Awaitable[None]]


class EquipmentProcessor(CloudEventProcessor):
    """Talks to the equipment of every scope under one topic prefix."""

    direction: ClassVar[Direction] = Direction.SOUTHBOUND
    default_prefix: ClassVar[str] = "app/equipment"

    def __init__(self, outlet: CommandOutlet, *, source: str = "microdcs") -> None:
        super().__init__(source=source)
        self._outlet = outlet
        self._receiver: Receiver | None = None
        self.sent = 0
        self.received = 0

    def set_receiver(self, receiver: Receiver) -> None:
        """Who matches answers and events to actions (the SFC engine)."""
        self._receiver = receiver

    # -- incoming: any type is an answer or an event ------------------------------------
    def handles_type(self, event_type: str) -> bool:
        return True

    def capabilities(self) -> Capabilities:
        """Any type in (answers and events of equipment); out, the commands recipes name
        (not known in advance) and the cancel of a command."""
        return Capabilities(
            emits=(EventTypeInfo(type=CANCEL_TYPE),), handles_any_type=True, emits_any_type=True
        )

    async def dispatch(self, event: CloudEvent, context: MessageContext) -> list[CloudEvent]:
        self.received += 1
        if self._receiver is None:
            logger.warning("equipment event %s dropped: no receiver", event.type)
            return []
        await self._receiver(event.subject, read_message(event))
        return []

    # -- outgoing -------------------------------------------------------------------------
    async def send_command(self, subject: str | None, command: Command) -> None:
        """Publish the command of a push_command run (again, if it is overdue)."""
        event = command_event(
            source=self.source,
            subject=subject,
            type_id=command.type_id,
            correlation_id=command.correlation_id,
            parameters=command.parameters,
            timeout_seconds=command.timeout_seconds,
        )
        await self._outlet.send(event, command.correlation_id)
        self.sent += 1

    async def send_cancel(self, subject: str | None, cancel: Cancel) -> None:
        event = cancel_event(
            source=self.source,
            subject=subject,
            correlation_id=cancel.correlation_id,
            reason=cancel.reason,
        )
        await self._outlet.send(event, cancel.correlation_id)
