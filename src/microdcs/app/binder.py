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


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Words of the condition language that a predicate cannot shadow.
_RESERVED = frozenset("and or not true false done failed result results param tag quality".split())

#: A processor factory: called once per replica, before anything runs.
ProcessorFactory = Callable[[Binder], None]
