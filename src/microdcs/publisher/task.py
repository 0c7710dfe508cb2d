"""The retained-topic publisher: keeps ``order/``, ``result/`` and ``state-index`` of the
job processor current, driven by the scopes' change streams. (Its ``metadata``, like every
processor's, is kept by :mod:`microdcs.processing.metadata`.)

One replica publishes at a time, elected through a Redis lease. It works in passes, at
most one per ``publisher_interval_seconds``: a pass reads the new changes of every scope
that has some, publishes the latest state of each changed job, then one ``state-index``
per changed scope that is due, and stores the scope's cursor once the broker acknowledged
all of it. Changes made between two passes are coalesced, and what a pass does per job is
O(changes). Only the index lists every job of its scope, so it is paced
(:func:`~microdcs.publisher.changes.index_pause`): at most once per interval, and for a
large scope at most ``index_entries_per_second`` entries a second (a 10,000-job scope
every 0.5 s by default). A deferred index goes out once due, in a pass of its own if no
change comes; the cursor records how far the published index reflects the stream.

``seq`` of a published index is its revision: exactly one more than the scope's previous
index. The revision is stored with the cursor, so a restart or a takeover continues the
numbering, and republishes (never skips) what the stored cursor does not cover yet.
Processors in the same replica wake the publisher through :meth:`JobPublisher.notify`;
changes made by other replicas are polled for.

The task survives Redis and broker outages: a pass that fails is given up, the outage
logged once, and publishing starts over from what Redis stores once both are back. A
job whose retained publish cannot be sent (an ID too long for a topic) is skipped and
counted, never stopping the others. After every takeover, and whenever the broker comes
back without our session, the leader checks a retained marker (see
:mod:`~microdcs.publisher.marker`); a broker that lost its retained messages gets the
full retained state of every scope again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterable

from microdcs.core.errors import OutgoingEventError, UnavailableError
from microdcs.jobs.contract import subject_of_scope
from microdcs.publisher.changes import (
    Cursor,
    Plan,
    Scope,
    entry_time,
    fold_changes,
    index_pause,
)
from microdcs.publisher.lease import Lease
from microdcs.publisher.marker import RetainedMarker, new_marker
from microdcs.publisher.options import PublisherOptions
from microdcs.publisher.payloads import (
    index_payload,
    order_payload,
    result_payload,
)
from microdcs.publisher.ports import JobFeed, ListedJob, RetainedOutlet
from microdcs.publisher.topics import RetainedTopics
from microdcs.storage.outage import OutageLog
from microdcs.storage.redis import RedisStore

logger = logging.getLogger(__name__)

#: Change-stream entries handled per scope and pass; a longer backlog takes more passes.
BATCH = 1024
#: How often the set of scopes is re-read to find scopes of other replicas.
DISCOVERY_SECONDS = 1.0
#: How long a pass in progress at shutdown may take to finish.
STOP_GRACE = 2.0
#: Scopes whose publishes are built between two yields to the event loop.
YIELD_EVERY = 2
#: Scopes republished concurrently when the broker lost the retained state.
REBUILD_CONCURRENCY = 16
#: What a pass survives: Redis or the broker away (the pass starts over later).
TRANSIENT = (UnavailableError,)

Publishes = list[Awaitable[None]]


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class JobPublisher:
    """A task body, ``run(shutdown)``, for the application to run and restart.

    ``jobs`` is read (the job store implements :class:`~microdcs.publisher.ports.JobFeed`),
    ``outlet`` takes the retained topics to the broker, and ``store`` holds the lease and
    the marker.
    """

    def __init__(
        self,
        options: PublisherOptions,
        jobs: JobFeed,
        store: RedisStore,
        outlet: RetainedOutlet,
    ) -> None:
        self.jobs = jobs
        self.outlet = outlet
        self.topics = RetainedTopics(options.prefix, options.scope_levels)
        self.expiry = options.retained_expiry
        self.poll = options.poll_seconds
        self.interval = options.interval_seconds
        self.index_rate = options.index_entries_per_second
        self.lease = Lease(
            store,
            store.key("jobs", "publisher", "lease"),
            options.instance_id,
            options.lease_seconds,
        )
        self.leading = False
        self.marker = RetainedMarker(
            store, store.key("jobs", "publisher", "marker"), self.topics.marker
        )
        #: Jobs whose retained state could not be published (exported as a counter).
        self.skipped = 0
        #: Full republishes because the broker had lost the retained state.
        self.rebuilds = 0
        self._check_retained = False
        self._outage = OutageLog(logger, "retained-topic publisher: Redis or the broker")
        self._scopes: dict[str, Scope] = {}
        self._hinted: set[str] = set()
        self._wake = asyncio.Event()
        self._discovered_at = 0.0
        self._polled_at = 0.0
        self._passed_at = 0.0
        self._stopping = False
        self._restart = False
        #: Per scope, the wall-clock time of its oldest change not yet published.
        self._oldest: dict[str, float] = {}
        #: Scopes whose index was deferred by the pacing: when (monotonic s) it is due.
        self._index_due: dict[str, float] = {}
        outlet.on_session(self._on_session)

    def notify(self, scope: str) -> None:
        """A processor of this replica changed ``scope``: publish without waiting a poll."""
        self._hinted.add(scope)
        self._oldest.setdefault(scope, time.time())
        self._wake.set()

    def lag_seconds(self) -> float:
        """Age of the oldest change known not to be published yet (0 if none).

        Measured from the change itself (its stream entry's time, or the local hint), so
        passes that keep failing make it grow until an alert fires. Only the lease holder
        publishes, so only its lag means anything; others report 0.
        """
        if not self.leading or not self._oldest:
            return 0.0
        return max(0.0, time.time() - min(self._oldest.values()))

    def _on_session(self, session_present: bool) -> None:
        """Session listener: a broker that forgot our session may have lost more."""
        if not session_present:
            self._check_retained = True
            self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self, shutdown: asyncio.Event) -> None:
        """Compete for the lease and publish while holding it, until ``shutdown``.

        At shutdown a pass in progress gets :data:`STOP_GRACE` to finish and store its
        cursor (so the next holder does not publish its revision again), then it is
        cancelled: once the MQTT connection is closed a publish is never acknowledged,
        and what the stored cursor does not cover is republished by the next holder.
        """
        if not await self._wait_or_stop(self.outlet.connected, shutdown):
            return
        self._stopping = False
        work = asyncio.ensure_future(self._compete())
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and self.leading:
                self._stopping = True
                self._wake.set()
                await asyncio.wait({work}, timeout=STOP_GRACE)
        finally:
            for task in (work, stop):
                task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
            if self.leading:
                self.leading = False
                with contextlib.suppress(*TRANSIENT):  # the lease then expires on its own
                    await self.lease.release()
        if not work.cancelled() and (error := work.exception()) is not None:
            raise error  # crashed while leading: the application restarts the task

    @staticmethod
    async def _wait_or_stop(event: asyncio.Event, shutdown: asyncio.Event) -> bool:
        waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(shutdown.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return not shutdown.is_set()

    async def _compete(self) -> None:
        """Hold the lease and lead, or stand by until it is free."""
        while not self._stopping:
            try:
                await self._turn()
            except TRANSIENT as exc:
                # What Redis stores is the truth: start over from it once it is back,
                # as a takeover does. The lag keeps growing meanwhile.
                self._restart = True
                await asyncio.sleep(self._outage.failed(exc))
            else:
                self._outage.recovered()

    async def _turn(self) -> None:
        """Renew the lease and lead until the next renewal, or stand by for a while."""
        renew = self.lease.seconds / 3
        standby = max(0.05, self.lease.seconds / 10)
        if await self.lease.hold():
            if not self.leading or self._restart:
                if not self.leading:
                    logger.info("%s now publishes retained job state", self.lease.holder)
                    # Hints of a standby may be long published by the last holder: the
                    # first pass measures what is still pending from the stream itself.
                    self._oldest.clear()
                self.leading = True
                await self._take_over()
            await self._lead(time.monotonic() + renew)
        else:
            if self.leading:
                logger.warning("%s lost the publisher lease", self.lease.holder)
            self.leading = False
            self._scopes.clear()
            self._index_due.clear()
            await asyncio.sleep(standby)

    async def _take_over(self) -> None:
        self._scopes.clear()
        self._index_due.clear()
        self._discovered_at = self._polled_at = 0.0
        self._check_retained = True  # whatever the last holder left, is it still there?
        self._restart = False

    # -- retained state lost by the broker ----------------------------------------------
    async def _verify_retained(self) -> None:
        """Republish every scope if the broker lost the retained marker (and so all)."""
        self._check_retained = False  # a listener may ask again while this runs
        try:
            if not await self.marker.intact(self.outlet):
                await self._rebuild()
        except BaseException:
            self._check_retained = True
            raise

    async def _rebuild(self) -> None:
        """The full retained state of every scope from Redis, then a new marker."""
        logger.warning("the broker holds no retained job state of ours; republishing all")
        names = sorted(await self.jobs.scopes())
        self._scopes.clear()
        self._index_due.clear()
        for start in range(0, len(names), REBUILD_CONCURRENCY):
            chunk = names[start : start + REBUILD_CONCURRENCY]
            await asyncio.gather(*(self._load(name, republish=True) for name in chunk))
        marker = new_marker()
        await self.outlet.publish(self.marker.topic, marker, expiry=None)
        await self.marker.remember(marker)  # only after the broker has all of it
        self.rebuilds += 1
        logger.info("republished the retained state of %d scopes", len(names))

    async def _lead(self, until: float) -> None:
        """Publish in passes until ``until`` (when the lease is renewed).

        A pass runs when a local processor hinted at a change, when a deferred index is
        due, or every ``poll`` for other replicas' changes, but never sooner than
        ``interval`` after the last one.
        """
        while (now := time.monotonic()) < until and not self._stopping:
            if self._check_retained:
                await self._verify_retained()
                continue
            poll_due = self._polled_at + self.poll
            index_due = min(self._index_due.values(), default=poll_due)
            if not self._hinted and now < poll_due and now < index_due:
                self._wake.clear()
                wake = min(poll_due, index_due, until)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wake - now)
                continue
            pause = self._passed_at + self.interval - now
            if pause > 0:
                await asyncio.sleep(min(pause, until - now))
                continue
            self._passed_at = now
            names, self._hinted = self._hinted, set()
            names |= {name for name, due in self._index_due.items() if due <= now}
            if now >= poll_due:
                self._polled_at = now
                names |= self._scopes.keys() | await self._discover()
            await self._pass(names)

    # -- scopes -----------------------------------------------------------------------------
    async def _discover(self) -> set[str]:
        """Scopes of other replicas, re-read at most every :data:`DISCOVERY_SECONDS`."""
        if time.monotonic() - self._discovered_at <= DISCOVERY_SECONDS:
            return set()
        self._discovered_at = time.monotonic()
        return await self.jobs.scopes() - self._scopes.keys()

    async def _load(self, name: str, *, republish: bool = False) -> None:
        """Start following a scope: from its stored cursor, or by a full republish
        (always with ``republish``; the index revisions go on from the stored one)."""
        scope = Scope(name)
        stored = await self.jobs.changes.cursor(name)
        if stored is not None:
            scope.resume(Cursor.decode(stored))
        if stored is None or republish:
            await self._resync(scope)
        else:
            scope.reset(await self.jobs.snapshot(name))
            scope.dirty = scope.seq > scope.indexed
        self._scopes[name] = scope

    async def _resync(self, scope: Scope) -> None:
        """Republish every listed job of a scope and its index from a snapshot."""
        snapshot = await self.jobs.snapshot(scope.name)
        scope.reset(snapshot)
        plan = Plan(scope, list(scope.index), [], snapshot.last_id, snapshot.seq, True, True)
        await self._publish([plan])

    # -- changes ---------------------------------------------------------------------------
    async def _pass(self, names: Iterable[str]) -> None:
        """Publish what changed in the named scopes since the last pass.

        One pipelined round trip reads the new changes of every scope and one more the
        changed jobs; no task per scope or job, and the loop is yielded between chunks
        of scopes, so requests handled by this replica do not wait for a whole pass.
        """
        names = list(names)
        await asyncio.gather(*(self._load(n) for n in names if n not in self._scopes))
        scopes = [self._scopes[n] for n in names if n in self._scopes]
        if not scopes:
            return
        batches = await self.jobs.changes.read([(s.name, s.cursor) for s in scopes], count=BATCH)
        plans = []
        for scope, entries in zip(scopes, batches, strict=True):
            if len(entries) == BATCH:
                self._hinted.add(scope.name)  # a backlog: go on in the next pass
            if not entries:
                if scope.dirty and self._index_ready(scope):
                    # A deferred index is due and no change came: it alone.
                    plans.append(Plan(scope, [], [], scope.cursor, scope.cursor_seq, True))
                elif scope.name not in self._hinted and not scope.dirty:
                    self._oldest.pop(scope.name, None)  # nothing left to publish
                continue
            first = entries[0].time
            self._oldest[scope.name] = min(self._oldest.get(scope.name, first), first)
            if entries[0].seq > scope.cursor_seq + 1:
                logger.warning(
                    "change stream of %s was trimmed past the cursor; resyncing", scope.name
                )
                await self._resync(scope)
                continue
            plans.append(fold_changes(scope, entries))
        if plans:
            await self._publish(plans)

    def _index_ready(self, scope: Scope) -> bool:
        """Whether the scope's next index may go out now (else when it is due)."""
        pause = index_pause(len(scope.index), self.interval, self.index_rate)
        due = scope.index_due(pause)
        if due <= time.monotonic():
            self._index_due.pop(scope.name, None)
            return True
        self._index_due[scope.name] = due
        return False

    async def _publish(self, plans: list[Plan]) -> None:
        """Publish the planned jobs and index revisions; then store the cursors.

        Everything is sent at once, jobs before their scope's index, and the cursors are
        stored only after the broker acknowledged all of it: a crash in between
        republishes, never loses.
        """
        records = await self.jobs.listed_many(
            [(plan.scope.name, job_id) for plan in plans for job_id in plan.upserts]
        )
        acks: Publishes = []
        done = 0
        for n, plan in enumerate(plans):
            scope = plan.scope
            subject = subject_of_scope(scope.name)
            acks += self._job_publishes(scope, records[done : done + len(plan.upserts)])
            done += len(plan.upserts)
            for job_id in plan.removes:
                try:
                    for topic in (
                        self.topics.order(subject, job_id),
                        self.topics.result(subject, job_id),
                    ):
                        acks.append(self.outlet.delete_nowait(topic))
                except (OutgoingEventError, ValueError) as exc:
                    self._skip(scope.name, job_id, exc)
            if plan.changed and not plan.resync and not self._index_ready(scope):
                plan.defer_index()
            if plan.changed:
                scope.index_at = time.monotonic()
                payload = index_payload(scope.revision + 1, subject, scope.index.values())
                topic = self.topics.state_index(subject)
                try:
                    acks.append(self.outlet.publish_nowait(topic, payload, expiry=self.expiry))
                except (OutgoingEventError, ValueError) as exc:
                    self._skip(scope.name, "state-index", exc)
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # let this replica's requests through
        await asyncio.gather(*acks)
        cursors = {}
        for plan in plans:
            cursor = plan.next_cursor()
            plan.scope.dirty = plan.scope.seq > cursor.indexed
            plan.scope.resume(cursor)
            cursors[plan.scope.name] = cursor.encode()
        await self.jobs.changes.save(cursors)
        for plan in plans:
            name = plan.scope.name
            if plan.scope.dirty:
                pass  # its index is deferred: the oldest change it does not cover yet
            elif name in self._hinted:  # more to come: at the latest after what is published
                last = entry_time(plan.cursor)
                self._oldest[name] = last if last > 0 else time.time()
            else:
                self._oldest.pop(name, None)

    def _job_publishes(self, scope: Scope, records: Iterable[ListedJob | None]) -> Publishes:
        """Queue the retained publishes of the jobs' current state; their PUBACK futures."""
        subject = subject_of_scope(scope.name)
        publishes: Publishes = []
        for record in records:
            if record is None:
                continue  # left the list meanwhile: its removal follows in the stream
            try:
                topic = self.topics.order(subject, record.job_id)
                payload = order_payload(record)
                publishes.append(self.outlet.publish_nowait(topic, payload, expiry=self.expiry))
                if record.has_response:
                    topic = self.topics.result(subject, record.job_id)
                    payload = result_payload(record)
                    publishes.append(self.outlet.publish_nowait(topic, payload, expiry=self.expiry))
            except (OutgoingEventError, ValueError) as exc:
                self._skip(scope.name, record.job_id, exc)
        return publishes

    def _skip(self, scope: str, job_id: str, error: Exception) -> None:
        """A retained topic that cannot be sent (refused before the broker sees it): the
        rest of the pass goes on. Logged once per change of the job, and counted."""
        self.skipped += 1
        logger.error(
            "retained state %s of scope %s cannot be published; skipped: %s",
            _short(job_id),
            _short(scope),
            error,
        )
