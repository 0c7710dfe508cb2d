"""Which equipment port an action's command goes through: the equipment map.

A recipe action names its equipment (``Equipment``, an ID); the station configuration of
the job's scope maps that ID to a processor binding (an MQTT topic prefix, or a sidecar
over MessagePack-RPC). The map is itself an :class:`EquipmentPort`, so the engine sends
every command and cancel to it and knows nothing of bindings. Resolution, in order:

1. no equipment named: the default port (the built-in equipment processor);
2. the scope's station configuration: ``mqtt`` + ``TopicPrefix`` -> the port bound under
   that prefix, ``rpc`` + ``Sidecar`` -> that sidecar's port;
3. a port the application registered for the ID (``binder.equipment("oven-1", port)``).

A command that resolves to nothing fails its action at once (through the receiver, as an
equipment error would: the recipe may route the failure), rather than waiting for its
timeout. The scope's bindings are read from Redis at most once per ``ttl`` seconds per
replica, so a station configuration change takes effect within ``ttl``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from microdcs.equipment.contract import EQUIPMENT_ERROR, Cancel, Command, EquipmentMessage
from microdcs.jobs.contract import scope_name
from microdcs.sfc.engine.ports import EquipmentPort, EquipmentReceiver
from microdcs_models.machinery_jobs import EquipmentBinding, EquipmentTransport

logger = logging.getLogger(__name__)


class BindingSource(Protocol):
    """The station configuration's equipment bindings of a scope (job management)."""

    async def equipment_bindings(self, scope: str) -> Mapping[str, EquipmentBinding]: ...


class UnknownEquipmentError(LookupError):
    """An action names equipment that no binding and no registered port reaches."""


class EquipmentMap:
    """Routes commands and cancels to the equipment port of the action's equipment."""

    def __init__(
        self,
        default: EquipmentPort,
        *,
        by_prefix: Mapping[str, EquipmentPort] | None = None,
        by_id: Mapping[str, EquipmentPort] | None = None,
        sidecar: Callable[[str], EquipmentPort] | None = None,
        bindings: BindingSource | None = None,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.by_prefix = dict(by_prefix or {})
        self.by_id = dict(by_id or {})
        self.sidecar = sidecar
        self.bindings = bindings
        self.ttl = ttl
        self.clock = clock
        self._receiver: EquipmentReceiver | None = None
        self._cache: dict[str, tuple[float, Mapping[str, EquipmentBinding]]] = {}

    @property
    def ports(self) -> list[EquipmentPort]:
        """Every distinct port known up front (sidecar ports are made on demand)."""
        seen: dict[int, EquipmentPort] = {}
        for port in (self.default, *self.by_prefix.values(), *self.by_id.values()):
            seen.setdefault(id(port), port)
        return list(seen.values())

    def set_receiver(self, receiver: EquipmentReceiver) -> None:
        """Every port's answers and events go to ``receiver`` (the engine)."""
        self._receiver = receiver
        for port in self.ports:
            port.set_receiver(receiver)

    async def send_command(self, subject: str | None, command: Command) -> None:
        try:
            port = await self.port(scope_name(subject), command.equipment)
        except UnknownEquipmentError as exc:
            logger.warning("command %s not sent: %s", command.correlation_id, exc)
            if self._receiver is not None:  # fails the action, as an equipment error would
                failure = EquipmentMessage(command.type_id, command.correlation_id, True, {},
                                           f"{EQUIPMENT_ERROR}: {exc}")  # fmt: skip
                await self._receiver(subject, failure)
            return
        await port.send_command(subject, command)

    async def send_cancel(self, subject: str | None, cancel: Cancel) -> None:
        try:
            port = await self.port(scope_name(subject), cancel.equipment)
        except UnknownEquipmentError as exc:
            logger.warning("cancel of %s not sent: %s", cancel.correlation_id, exc)
            return
        await port.send_cancel(subject, cancel)

    async def port(self, scope: str, equipment: str | None) -> EquipmentPort:
        """The port for ``equipment`` in ``scope``; raises :class:`UnknownEquipmentError`."""
        if equipment is None:
            return self.default
        binding = (await self._bindings(scope)).get(equipment)
        if binding is not None:
            return self._bound(equipment, binding)
        port = self.by_id.get(equipment)
        if port is None:
            raise UnknownEquipmentError(
                f"equipment {equipment!r} has no binding in the station configuration of "
                f"scope {scope!r} and no registered port"
            )
        return port

    def _bound(self, equipment: str, binding: EquipmentBinding) -> EquipmentPort:
        if binding.transport is EquipmentTransport.MQTT:
            port = self.by_prefix.get(binding.topic_prefix or "")
            if port is None:
                raise UnknownEquipmentError(
                    f"equipment {equipment!r} is bound to MQTT prefix {binding.topic_prefix!r},"
                    " where no equipment processor is bound"
                )
            return port
        if self.sidecar is None:
            raise UnknownEquipmentError(
                f"equipment {equipment!r} is bound to sidecar {binding.sidecar!r},"
                " but MessagePack-RPC is off (APP_RPC_ENABLED)"
            )
        port = self.sidecar(binding.sidecar or "")
        if self._receiver is not None:
            port.set_receiver(self._receiver)
        return port

    async def _bindings(self, scope: str) -> Mapping[str, EquipmentBinding]:
        if self.bindings is None:
            return {}
        now = self.clock()
        cached = self._cache.get(scope)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        bindings = await self.bindings.equipment_bindings(scope)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[scope] = (now, bindings)
        return bindings

    def forget(self, scope: str) -> None:
        """Read the scope's bindings again on next use (its station configuration changed)."""
        self._cache.pop(scope, None)
