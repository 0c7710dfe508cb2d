"""The retained-topic publisher: keeps ``order/``, ``result/``, ``state-index`` and
``metadata`` of the job processor current, driven by the scopes' change streams.

One replica publishes at a time, elected through a Redis lease. It resumes from the
cursor stored per scope (``stream id`` and ``seq``), so a restart or a takeover neither
skips a change nor republishes an older ``seq``. Processors in the same replica wake it
through :meth:`JobPublisher.notify`; changes made by other replicas are polled for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from microdcs.config import AppConfig
from microdcs.jobs.keys import subject_of_scope
from microdcs.jobs.storage import JobRecord, JobStore
from microdcs.processor import CloudEventProcessor
from microdcs.publisher.lease import Lease
from microdcs.publisher.payloads import (
    IndexEntry,
    index_payload,
    metadata_payload,
    order_payload,
    result_payload,
)
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.topics import TopicLayout

logger = logging.getLogger(__name__)

#: Change-stream entries handled per scope and pass.
BATCH = 1024
#: How often the set of scopes is re-read to find scopes of other replicas.
DISCOVERY_SECONDS = 1.0


@dataclass(slots=True)
class _Scope:
    """What the publisher knows about one scope."""

    name: str
    cursor: str = "0-0"
    #: ``seq`` of the last published state index (and of the stored cursor).
    seq: int = 0
    index: dict[str, IndexEntry] = field(default_factory=dict)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Stream entries of a one-stream XREAD reply, raw RESP or parsed by redis-py."""
    if not reply:
        return []
    entries = []
    for entry_id, fields in reply[0][1]:
        if not isinstance(fields, dict):
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        entries.append((entry_id, fields))
    return entries


class JobPublisher:
    """An :class:`~microdcs.app.AdditionalTask` body: ``run(shutdown)``."""

    def __init__(
        self,
        config: AppConfig,
        jobs: JobStore,
        mqtt: MqttHandler,
        processor: CloudEventProcessor,
    ) -> None:
        self.jobs = jobs
        self.mqtt = mqtt
        self.processor = processor
        self.layout = TopicLayout(config.jobs_prefix, config.scope_levels)
        self.expiry = config.jobs_retained_expiry
        self.poll = config.publisher_poll_seconds
        self.lease = Lease(
            jobs.redis,
            jobs.redis.key("jobs", "publisher", "lease"),
            config.resolved_instance_id,
            config.publisher_lease_seconds,
        )
        self.leading = False
        self._scopes: dict[str, _Scope] = {}
        self._hinted: set[str] = set()
        self._wake = asyncio.Event()
        self._discovered_at = 0.0

    def notify(self, scope: str) -> None:
        """A processor of this replica changed ``scope``: publish without waiting a poll."""
        self._hinted.add(scope)
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self, shutdown: asyncio.Event) -> None:
        """Compete for the lease and publish while holding it, until ``shutdown``."""
        if not await self._wait_or_stop(self.mqtt.connected, shutdown):
            return
        renew = self.lease.seconds / 3
        standby = max(0.05, self.lease.seconds / 10)
        try:
            while not shutdown.is_set():
                if await self.lease.hold():
                    if not self.leading:
                        logger.info("%s now publishes retained job state", self.lease.holder)
                        self.leading = True
                        await self._take_over()
                    await self._lead(time.monotonic() + renew, shutdown)
                else:
                    if self.leading:
                        logger.warning("%s lost the publisher lease", self.lease.holder)
                    self.leading = False
                    self._scopes.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(shutdown.wait(), standby)
        finally:
            if self.leading:
                self.leading = False
                await self.lease.release()

    @staticmethod
    async def _wait_or_stop(event: asyncio.Event, shutdown: asyncio.Event) -> bool:
        waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(shutdown.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return not shutdown.is_set()

    async def _take_over(self) -> None:
        await self.mqtt.publish_retained(
            f"{self.layout.prefix}/metadata", metadata_payload(self.processor), expiry=self.expiry
        )
        self._scopes.clear()
        self._discovered_at = 0.0

    async def _lead(self, until: float, shutdown: asyncio.Event) -> None:
        """Publish changes until ``until`` (when the lease is renewed) or shutdown."""
        while not shutdown.is_set():
            await self._discover()
            busy = await self._pump()
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            if not busy:
                self._wake.clear()
                if self._hinted - self._scopes.keys():
                    continue
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(shutdown.wait())
                try:
                    await asyncio.wait(
                        {waiter, stopper},
                        timeout=min(self.poll, remaining),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
                    stopper.cancel()

    # -- scopes -----------------------------------------------------------------------------
    async def _discover(self) -> None:
        new = self._hinted - self._scopes.keys()
        self._hinted.clear()
        if time.monotonic() - self._discovered_at > DISCOVERY_SECONDS:
            self._discovered_at = time.monotonic()
            new |= await self.jobs.scopes() - self._scopes.keys()
        for name in sorted(new):
            await self._load(name)

    async def _load(self, name: str) -> None:
        """Start following a scope: from its stored cursor, or by a full republish."""
        scope = _Scope(name)
        self._scopes[name] = scope
        stored = await self.jobs.redis.execute("GET", self.jobs.keys(name).cursor)
        if stored is None:
            await self._resync(scope)
            return
        cursor, _, seq = _text(stored).partition(" ")
        scope.cursor, scope.seq = cursor, int(seq)
        snapshot = await self.jobs.snapshot(name)
        scope.index = {
            job_id: IndexEntry(status.path, has_result)
            for job_id, status, has_result in snapshot.jobs
        }

    async def _resync(self, scope: _Scope) -> None:
        """Republish every listed job of a scope and its index from a snapshot."""
        snapshot = await self.jobs.snapshot(scope.name)
        scope.index = {
            job_id: IndexEntry(status.path, has_result)
            for job_id, status, has_result in snapshot.jobs
        }
        records = await asyncio.gather(*(self.jobs.listed(scope.name, j) for j in scope.index))
        await asyncio.gather(*(self._publish_job(scope, r) for r in records if r is not None))
        await self._commit(scope, snapshot.last_id, max(snapshot.seq, scope.seq + 1))

    # -- changes ---------------------------------------------------------------------------
    async def _pump(self) -> bool:
        """One pass over every scope; True when some scope had changes."""
        scopes = list(self._scopes.values())
        replies = await asyncio.gather(
            *(
                self.jobs.redis.execute(
                    "XREAD", "COUNT", BATCH, "STREAMS", self.jobs.keys(s.name).changes, s.cursor
                )
                for s in scopes
            )
        )
        busy = False
        for scope, reply in zip(scopes, replies, strict=True):
            entries = _entries(reply)
            if entries:
                busy = True
                await self._apply(scope, entries)
        return busy

    async def _apply(self, scope: _Scope, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Publish a batch of a scope's changes, then the index, then store the cursor."""
        first_seq = int(entries[0][1][b"seq"])
        if scope.seq and first_seq > scope.seq + 1:
            logger.warning("change stream of %s was trimmed past the cursor; resyncing", scope.name)
            await self._resync(scope)
            return
        last_op: dict[str, str] = {}
        seq = scope.seq
        for _, fields in entries:
            job_id = _text(fields[b"id"])
            op = _text(fields[b"op"])
            last_op[job_id] = op
            entry_seq = int(fields[b"seq"])
            if entry_seq <= scope.seq:
                continue  # already reflected in the index (snapshot or earlier pass)
            seq = max(seq, entry_seq)
            if op == "remove":
                scope.index.pop(job_id, None)
            else:
                path = _status_path(fields)
                scope.index[job_id] = IndexEntry(path, _text(fields[b"res"]) == "1")
        upserts = [j for j, op in last_op.items() if op != "remove"]
        removes = [j for j, op in last_op.items() if op == "remove"]
        records = await asyncio.gather(*(self.jobs.listed(scope.name, j) for j in upserts))
        subject = subject_of_scope(scope.name)
        await asyncio.gather(
            *(self._publish_job(scope, r) for r in records if r is not None),
            *(self.mqtt.delete_retained(self.layout.scoped(subject, "order", j)) for j in removes),
            *(self.mqtt.delete_retained(self.layout.scoped(subject, "result", j)) for j in removes),
        )
        await self._commit(scope, _text(entries[-1][0]), seq)

    async def _publish_job(self, scope: _Scope, record: JobRecord) -> None:
        subject = subject_of_scope(scope.name)
        topic = self.layout.scoped(subject, "order", record.job_id)
        await self.mqtt.publish_retained(topic, order_payload(record), expiry=self.expiry)
        if record.has_response:
            topic = self.layout.scoped(subject, "result", record.job_id)
            await self.mqtt.publish_retained(topic, result_payload(record), expiry=self.expiry)

    async def _commit(self, scope: _Scope, cursor: str, seq: int) -> None:
        """Publish the index (only with a newer ``seq``) and store the cursor."""
        if seq > scope.seq:
            payload = index_payload(seq, subject_of_scope(scope.name), scope.index.items())
            topic = self.layout.scoped(subject_of_scope(scope.name), "state-index")
            await self.mqtt.publish_retained(topic, payload, expiry=self.expiry)
        scope.cursor, scope.seq = cursor, max(seq, scope.seq)
        key = self.jobs.keys(scope.name).cursor
        await self.jobs.redis.execute("SET", key, f"{scope.cursor} {scope.seq}")


def _status_path(fields: dict[bytes, bytes]) -> str:
    from microdcs.jobs.states import JobState, JobStatus

    sub = int(fields[b"sub"]) or None
    return JobStatus(JobState(int(fields[b"st"])), sub).path
