"""What the equipment processor needs to send commands, declared by the processor.

The app hands it the MQTT implementation (``transports/mqtt/outlets.py``), so the
equipment package imports no transport and its tests can record what would be sent.
"""

from __future__ import annotations

from typing import Protocol

from microdcs.core.cloudevent import CloudEvent


class CommandOutlet(Protocol):
    """The way out for command and cancel CloudEvents to a scope's equipment."""

    async def send(self, event: CloudEvent, correlation_id: str) -> None:
        """Send ``event`` to its subject's equipment and wait until the broker has it.

        ``correlation_id`` travels with it as the transport's correlation data, and the
        answer is asked for on the scope's shared events topic, so that no answer depends
        on the replica that sent the command.
        """
        ...


class SidecarOutlet(Protocol):
    """The way out to equipment behind a named sidecar (``transports/msgpack_rpc``)."""

    def send(self, sidecar: str, event: CloudEvent) -> bool:
        """Push ``event`` to the sidecar; False when it is not connected to this replica."""
        ...
