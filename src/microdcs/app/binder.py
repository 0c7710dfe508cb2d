"""What a processor factory is handed: bind a processor, add a task, read the settings.

A factory (``microdcs run --processor my.module:bind``) gets a :class:`Binder`, not the
whole replica: it cannot reach into transports, storage or other processors, so the
wiring stays in one place and a factory written today keeps working when that changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from microdcs.app.application import AdditionalTask
from microdcs.app.config import AppConfig
from microdcs.processing.processor import CloudEventProcessor

BindProcessor = Callable[[CloudEventProcessor, str | None, bool], None]


@dataclass(frozen=True, slots=True)
class Binder:
    """The narrow view of a replica that processor factories use."""

    #: The replica's settings (read-only).
    config: AppConfig
    _bind: BindProcessor
    _add_task: Callable[[AdditionalTask], None]

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


#: A processor factory: called once per replica, before anything runs.
ProcessorFactory = Callable[[Binder], None]
