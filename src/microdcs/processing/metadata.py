"""Capability metadata: each bound processor's retained ``{prefix}/metadata`` CloudEvent.

Every replica publishes the description of each processor it serves after every (re)connect
(a broker that lost its retained messages gets them back at once) and keeps a Redis roster
of the replicas serving each prefix alive. The description is removed (an empty retained
message) only when the processor goes away for good: a graceful shutdown of the *last*
replica serving the prefix, with the MQTT session ended at shutdown
(``APP_MQTT_END_SESSION_ON_SHUTDOWN``). A rolling restart of several replicas never
removes it, nor does a single replica configured to come back with its session. A replica
that crashes cannot remove anything: the description stays until a replica is back (it
republishes it) or an operator deletes a processor retired that way.

The ports are declared here; the app hands in the MQTT outlet and the Redis roster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

from microdcs.core.cloudevent import CloudEvent, now_timestamp
from microdcs.core.contenttypes import JSON
from microdcs.core.errors import UnavailableError
from microdcs.core.waiting import sleep_unless
from microdcs.processing.capabilities import EventTypeInfo
from microdcs.processing.processor import CloudEventProcessor
from microdcs_models.processor_metadata import (
    EventTypeInfo as EventTypeModel,
)
from microdcs_models.processor_metadata import (
    ProcessorDirection,
    ProcessorMetadata,
)

logger = logging.getLogger(__name__)

#: CloudEvent type of the retained capability description.
METADATA_TYPE = ProcessorMetadata.__ce_type__ or ""
#: How often a replica tells the roster it still serves its prefixes.
REFRESH_SECONDS = 10.0
#: A replica that has not refreshed for this long no longer counts as serving.
ROSTER_SECONDS = 3 * REFRESH_SECONDS
#: How long the last replica leaving waits for the broker to take the removal.
REMOVE_SECONDS = 2.0
#: Back-off after a failed publish or roster refresh.
RETRY_SECONDS = 1.0


class MetadataOutlet(Protocol):
    """The retained metadata topic of one processor binding (``{prefix}/metadata``)."""

    @property
    def prefix(self) -> str:
        """The topic prefix of the binding (the roster counts replicas per prefix)."""
        ...

    async def publish(self, event: CloudEvent) -> None:
        """Retain ``event`` there and wait for the broker's acknowledgement."""
        ...

    async def remove(self) -> None:
        """Delete the retained message (an empty retained publish) and wait for it."""
        ...


class ReplicaRoster(Protocol):
    """Which replicas serve a prefix now, so that only the last one leaving removes it."""

    async def refresh(self, prefixes: Sequence[str]) -> None:
        """This replica serves ``prefixes`` for another :data:`ROSTER_SECONDS`."""
        ...

    async def leave(self, prefix: str) -> bool:
        """This replica serves ``prefix`` no more; True when no live replica does."""
        ...


def _info(info: EventTypeInfo) -> EventTypeModel:
    return EventTypeModel(
        type=info.type,
        dataschema=info.dataschema,
        response_type=info.response_type,
        response_dataschema=info.response_dataschema,
    )


def metadata_message(processor: CloudEventProcessor, prefix: str) -> ProcessorMetadata:
    """The capability description of ``processor`` bound under ``prefix``."""
    capabilities = processor.capabilities()
    return ProcessorMetadata(
        processor=processor.name,
        direction=ProcessorDirection(processor.direction.value),
        prefix=prefix,
        handles=[_info(info) for info in capabilities.handles],
        handles_any_type=capabilities.handles_any_type or None,
        emits=[_info(info) for info in capabilities.emits],
        emits_any_type=capabilities.emits_any_type or None,
    )


def metadata_event(processor: CloudEventProcessor, prefix: str, *, source: str) -> CloudEvent:
    """The retained CloudEvent (JSON, no subject: it describes the whole prefix)."""
    message = metadata_message(processor, prefix)
    return CloudEvent(
        type=METADATA_TYPE,
        source=source,
        datacontenttype=JSON,
        dataschema=ProcessorMetadata.__ce_dataschema__,
        time=now_timestamp(),
        data=message.encode(JSON),
    )


@dataclass(frozen=True, slots=True)
class Announced:
    """One processor binding whose metadata a replica announces."""

    processor: CloudEventProcessor
    outlet: MetadataOutlet


class MetadataAnnouncer:
    """A task body, ``run(shutdown)``: announce, keep the roster, remove when last.

    :meth:`republish` is called by the app after every (re)connect of the transport.
    ``remove_when_last`` is False where a replica means to come back with its session.
    """

    def __init__(
        self,
        bindings: Sequence[Announced],
        roster: ReplicaRoster,
        *,
        source: str,
        remove_when_last: bool,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.bindings = tuple(bindings)
        self._roster = roster
        self._source = source
        self._remove_when_last = remove_when_last
        self._refresh_seconds = refresh_seconds
        self._prefixes = list(dict.fromkeys(b.outlet.prefix for b in self.bindings))
        self._wake = asyncio.Event()
        #: Descriptions published so far (tests and metrics read it).
        self.published = 0
        #: Descriptions removed by this replica as the last one leaving.
        self.removed = 0

    def republish(self) -> None:
        """Publish every description again soon (the broker may have lost them)."""
        self._wake.set()

    async def run(self, shutdown: asyncio.Event) -> None:
        """Until ``shutdown``; then leave the roster and remove what no one serves."""
        if not self.bindings:
            return
        failing = False
        while not shutdown.is_set():
            try:
                await self._roster.refresh(self._prefixes)
                if self._wake.is_set():
                    self._wake.clear()
                    await self._unless_shutdown(shutdown, self._publish_all())
                failing = False
                delay = self._refresh_seconds
            except UnavailableError as error:
                if not failing:
                    logger.warning("processor metadata not published yet: %s", error)
                failing = True
                self._wake.set()  # whatever failed is tried again
                delay = RETRY_SECONDS
            await self._pause(shutdown, delay, failing)
        await self._leave()

    async def _publish_all(self) -> None:
        for binding in self.bindings:
            event = metadata_event(binding.processor, binding.outlet.prefix, source=self._source)
            await binding.outlet.publish(event)
            self.published += 1

    @staticmethod
    async def _unless_shutdown(shutdown: asyncio.Event, work: Awaitable[None]) -> None:
        """``work``, given up at shutdown: a publish waits for a PUBACK through a broker
        outage, and shutdown must not wait for the broker."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not task.cancelled():
            task.result()  # its exception, if it failed

    async def _pause(self, shutdown: asyncio.Event, seconds: float, failing: bool) -> None:
        """``seconds``, or less: shutdown, or a republish asked for (unless backing off)."""
        await sleep_unless(seconds, shutdown, None if failing else self._wake)

    async def _leave(self) -> None:
        """Leave each prefix's roster; the last replica removes that prefix's metadata."""
        for prefix in self._prefixes:
            try:
                last = await self._roster.leave(prefix)
            except UnavailableError as error:
                logger.warning(
                    "metadata of %s kept: the roster is out of reach (%s)", prefix, error
                )
                continue
            if not (last and self._remove_when_last):
                continue
            for binding in self.bindings:
                if binding.outlet.prefix != prefix:
                    continue
                with contextlib.suppress(UnavailableError, TimeoutError):
                    async with asyncio.timeout(REMOVE_SECONDS):
                        await binding.outlet.remove()
                        self.removed += 1
                        logger.info("removed the metadata of %s: no replica serves it", prefix)
