"""What a processor factory is handed: bind a processor, add a task, read the settings.

A factory (``microdcs run --processor my.module:bind``) gets a :class:`Binder`, not the
whole replica: it cannot reach into transports, storage or other processors, so the
wiring stays in one place and a factory written today keeps working when that changes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from microdcs.app.application import AdditionalTask
from microdcs.app.config import AppConfig
from microdcs.processing.processor import CloudEventProcessor
from microdcs.sfc import Predicate
from microdcs.sfc.engine.ports import EquipmentPort

BindProcessor = Callable[[CloudEventProcessor, str | None, bool], None]


@dataclass(frozen=True, slots=True)
class Binder:
    """The narrow view of a replica that processor factories use."""

    #: The replica's settings (read-only).
    config: AppConfig
    _bind: BindProcessor
    _add_task: Callable[[AdditionalTask], None]
    #: Condition predicates registered by factories; the engine and recipe validation of
    #: this replica read this same mapping, so a name registered here is usable at once.
    predicates: dict[str, Predicate] = field(default_factory=dict)
    #: Equipment ports registered for equipment IDs (:meth:`equipment`).
    equipment_ports: dict[str, EquipmentPort] = field(default_factory=dict)
    #: Southbound processors that are equipment ports, by the MQTT prefix they are bound
    #: under (:meth:`equipment_processor`): what a station's ``mqtt`` binding names.
    equipment_processors: dict[str, EquipmentPort] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The CloudEvent ``source`` of this replica's outgoing events."""
        return self.config.resolved_source

    def bind(
        self, processor: CloudEventProcessor, *, prefix: str | None = None, rpc: bool = True
    ) -> None:
        """Serve ``processor`` over MQTT under ``prefix`` (its default prefix when None),
        and over MessagePack-RPC when that transport is on and ``rpc`` is True."""
        self._bind(processor, prefix, rpc)

    def add_task(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Run ``run(shutdown)`` beside the transports; restarted with back-off if it fails."""
        self._add_task(AdditionalTask(name, run))

    def predicate(self, name: str) -> Callable[[Predicate], Predicate]:
        """Register the decorated function as the condition predicate ``name``.

        Recipes name it as a bare word in transition conditions (``done and oven_ready``);
        it gets the transition's :class:`~microdcs.sfc.ConditionContext` and returns a
        bool. Registered per replica, so every replica's factory must register it: a
        recipe naming an unknown predicate is rejected at validation.
        """
        if not _NAME.fullmatch(name) or name in _RESERVED or name.startswith("__"):
            raise ValueError(f"{name!r} cannot name a predicate (a bare identifier, not a keyword)")
        if name in self.predicates:
            raise ValueError(f"predicate {name!r} is already registered")

        def register(func: Predicate) -> Predicate:
            self.predicates[name] = func
            return func

        return register

    def equipment(self, equipment_id: str, port: EquipmentPort) -> None:
        """Drive the equipment ``equipment_id`` through ``port`` (when the station
        configuration of the job's scope has no binding for it).

        Recipe actions name it in ``Equipment``; the engine sends their commands and
        cancels to ``port`` and hands it its receiver for answers and events.
        """
        if not equipment_id:
            raise ValueError("an equipment ID must not be empty")
        if equipment_id in self.equipment_ports:
            raise ValueError(f"equipment {equipment_id!r} already has a port")
        self.equipment_ports[equipment_id] = port

    def equipment_processor(self, processor: CloudEventProcessor, *, prefix: str) -> None:
        """Bind a southbound processor that implements the equipment port (``send_command``,
        ``send_cancel``, ``set_receiver``) under ``prefix`` (MQTT only); a station
        configuration binding ``{"Transport": "mqtt", "TopicPrefix": prefix}`` reaches it."""
        for method in ("send_command", "send_cancel", "set_receiver"):
            if not callable(getattr(processor, method, None)):
                raise TypeError(f"{type(processor).__name__} is no equipment port: no {method}")
        if prefix in self.equipment_processors or prefix == self.config.equipment_prefix:
            raise ValueError(f"an equipment processor is already bound under {prefix!r}")
        self._bind(processor, prefix, False)
        self.equipment_processors[prefix] = processor  # type: ignore[assignment]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Words of the condition language that a predicate cannot shadow.
_RESERVED = frozenset(
    {
        "and",
        "or",
        "not",
        "true",
        "false",
        "done",
        "failed",
        "result",
        "results",
        "param",
        "tag",
        "quality",
    }
)

#: A processor factory: called once per replica, before anything runs.
ProcessorFactory = Callable[[Binder], None]
