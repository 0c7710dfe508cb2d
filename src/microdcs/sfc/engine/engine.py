"""The SFC engine task: every replica runs it; Redis decides who does what.

Per scope, each replica reads the scope's work stream through one consumer group, claims
entries a dead replica left behind (XAUTOCLAIM after an idle time), and fires due timers
(claimed atomically, so each fires once). An entry is evolved against the stored
execution, stored with a compare-and-swap on its version together with the effects to
perform, then the effects are performed and only then the entry is acknowledged. New
scopes are found through a Redis set, without a restart.

Tracing: each item carries the trace context of what queued it, and the execution keeps
the context of the job's start (the MES request), so every step of a job, on whichever
replica, is a span in the job's trace, and so are the commands and job moves it causes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import orjson

from microdcs.core.errors import InputError, InvalidRequestError, StorageUnavailableError
from microdcs.core.tracing import Tracing
from microdcs.core.waiting import sleep_unless
from microdcs.equipment.contract import Cancel, Command, EquipmentMessage
from microdcs.jobs.contract import (
    JobControl,
    JobEvent,
    JobEventKind,
    scope_name,
    subject_of_scope,
)
from microdcs.plantdata.contract import TagSample
from microdcs.sfc import (
    CancelAction,
    CompiledRecipe,
    DispatchAction,
    Event,
    JobAborted,
    JobCompleted,
    JobStopped,
    JobSuspended,
    Predicate,
    compile_recipe,
    evolve,
    new_execution,
)
from microdcs.sfc.engine.keys import RESEND, timer_member
from microdcs.sfc.engine.plan import (
    External,
    WorkItem,
    decode_effects,
    encode_effects,
    plan_change,
    response_data,
)
from microdcs.sfc.engine.ports import EquipmentPort, ProgressSink, RecipeSource, TagValues
from microdcs.sfc.engine.progress import progress_event, retried, step_state
from microdcs.sfc.engine.store import EngineStore, Entry, Stored
from microdcs.sfc.engine.tagwatch import changed_since, read_tags
from microdcs.sfc.engine.tracecontext import NONE, Carried, step_parent
from microdcs.sfc.state import Execution, RunStatus
from microdcs.sfc.work import dispatch_effect
from microdcs.storage.outage import OutageLog
from microdcs_models.sfc_recipe import SfcInteraction, SfcRecipe
from microdcs_models.sfc_step_event import SfcProgressEvent

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Redis being away: wait and retry rather than crash the task.
TRANSIENT = (StorageUnavailableError,)
#: MES moves the engine turns into work items (by the MES only; its own moves are not).
_MES_KINDS = {
    JobEventKind.PAUSED: "pause",
    JobEventKind.RESUMED: "resume",
    JobEventKind.STOPPED: "stop",
    JobEventKind.ABORTED: "abort",
}
_CAS_ATTEMPTS = 20


class SfcEngine:
    """Runs the recipes of all scopes; ``run`` is the replica's additional task."""

    def __init__(
        self,
        store: EngineStore,
        control: JobControl,
        recipes: RecipeSource,
        equipment: EquipmentPort,
        *,
        consumer: str,
        claim_idle: float = 3.0,
        timer_poll: float = 0.05,
        resend_after: float = 5.0,
        scope_scan: float = 1.0,
        batch: int = 256,
        predicates: Mapping[str, Predicate] | None = None,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
        progress: ProgressSink | None = None,
        tags: TagValues | None = None,
    ) -> None:
        self.store = store
        self.control = control
        self.recipes = recipes
        self.equipment = equipment
        self.consumer = consumer
        self.claim_idle = claim_idle
        self.timer_poll = timer_poll
        self.resend_after = resend_after
        self.scope_scan = scope_scan
        self.batch = batch
        self.predicates = dict(predicates or {})
        self.clock = clock
        self.tracing = tracing or Tracing()
        #: Step progress events; None publishes none (the benchmark's baseline).
        self.progress = progress
        #: Current tag values for conditions that read tags (None: every tag reads None).
        self.tags = tags
        self.steps = 0  # entries that changed an execution (a benchmark counter)
        #: Running or paused executions in all scopes (cluster-wide), refreshed each scan.
        self.active_executions = 0
        self._compiled: dict[str, CompiledRecipe] = {}
        self._by_job: OrderedDict[tuple[str, str], CompiledRecipe] = OrderedDict()
        self._wake = asyncio.Event()
        #: Shared by every loop: one warning per Redis outage, however many loops retry.
        self.redis_outage = OutageLog(logger, "Redis (SFC engine)")
        equipment.set_receiver(self.on_equipment)

    # -- inputs from other components ---------------------------------------------------
    async def on_job_event(self, event: JobEvent) -> None:
        """Job listener: start the recipe of a job the start policy moved to Running, and
        pass MES pause/resume/stop/abort to running recipes."""
        if not event.has_sfc_recipe:
            return
        if event.kind is JobEventKind.STARTED:
            kind = "start"
        elif event.by_mes and event.kind in _MES_KINDS:
            kind = _MES_KINDS[event.kind]
        else:
            return
        scope = scope_name(event.subject)
        if await self.store.register_scope(scope):
            self._wake.set()
        # Called while the MES request is handled: the item carries that request's trace.
        await self.store.enqueue(scope, WorkItem(kind, event.job_id, trace=Carried.current()))

    async def on_equipment(self, subject: str | None, message: EquipmentMessage) -> None:
        """An equipment answer or event (on any replica): queue the completion it causes."""
        kind = "fail" if message.failed else "done"
        payload = message.reason if message.failed else orjson.dumps(dict(message.result))
        matched = await self.store.match(
            scope_name(subject), message.correlation_id or "", kind, payload, message.type,
            Carried.current(),  # the consumer span of the answer, in the job's trace
        )  # fmt: skip
        if not matched and message.correlation_id:
            logger.debug("no action awaits %s (%s)", message.correlation_id, message.type)

    # -- the task -------------------------------------------------------------------------
    async def run(self, shutdown: asyncio.Event) -> None:
        started: set[str] = set()
        async with asyncio.TaskGroup() as group:
            while not shutdown.is_set():
                try:
                    scopes = await self.store.scopes()
                    for scope in sorted(scopes - started):
                        await self.store.ensure_group(scope)
                        started.add(scope)
                        for loop in (self._read_loop, self._claim_loop, self._timer_loop):
                            group.create_task(loop(scope, shutdown))
                    self.active_executions = await self.store.active_count(started)
                    self.redis_outage.recovered()
                except TRANSIENT as exc:
                    self.redis_outage.failed(exc)
                self._wake.clear()
                await sleep_unless(self.scope_scan, shutdown, self._wake)

    async def _read_loop(self, scope: str, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            entries: list[Entry] = await self._guard(
                self.store.read(scope, self.consumer, count=self.batch, block_ms=500), []
            )
            if entries:
                await self._process_batch(scope, entries)

    async def _claim_loop(self, scope: str, shutdown: asyncio.Event) -> None:
        idle_ms = int(self.claim_idle * 1000)
        while not shutdown.is_set():
            await sleep_unless(max(self.claim_idle / 3, 0.05), shutdown)
            entries: list[Entry] = await self._guard(
                self.store.claim(scope, self.consumer, min_idle_ms=idle_ms, count=self.batch), []
            )
            if entries:
                logger.info("claimed %d work items of scope %s", len(entries), scope)
                await self._process_batch(scope, entries)

    async def _timer_loop(self, scope: str, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            await self._guard(self.store.claim_timers(scope, self.clock()), 0)
            await sleep_unless(self.timer_poll, shutdown)

    async def _guard(self, operation: Awaitable[T], fallback: T) -> T:
        """Run a Redis operation; on an outage back off and return ``fallback``.

        The loops survive any outage (unreachable, restarting, ``LOADING``, ``BUSY``);
        the outage is logged once, when it starts, and once when it ends.
        """
        try:
            result: T = await operation
        except TRANSIENT as exc:
            await asyncio.sleep(self.redis_outage.failed(exc))
            return fallback
        self.redis_outage.recovered()
        return result

    # -- processing -------------------------------------------------------------------------
    async def _process_batch(self, scope: str, entries: Sequence[Entry]) -> None:
        """Jobs in parallel, each job's items in order; acknowledge what was stored."""
        by_job: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            by_job[entry[1].job_id].append(entry)
        results = await asyncio.gather(
            *(self._process_job(scope, items) for items in by_job.values())
        )
        done = [entry_id for ids in results for entry_id in ids]
        await self._guard(self.store.ack(scope, done), None)

    async def _process_job(self, scope: str, entries: list[Entry]) -> list[str]:
        done: list[str] = []
        for entry_id, item in entries:
            try:
                if await self._process(scope, entry_id, item):
                    done.append(entry_id)
            except TRANSIENT as exc:
                # Left unacknowledged: read again (claimed) once Redis is back.
                self.redis_outage.failed(exc)
                break
            except Exception:
                logger.exception("work item %s (%s) of job %s failed", entry_id, item.kind,
                                 item.job_id)  # fmt: skip
                break
        return done

    async def _process(self, scope: str, entry_id: str, item: WorkItem) -> bool:
        """Apply one work item; True when it may be acknowledged."""
        if item.is_resend:
            stored = await self.store.load(scope, item.job_id)
            with self._step_span(scope, item, stored):
                await self._resend(scope, item, stored)
            return True
        event = item.event()
        if event is None:
            logger.warning("unknown work item kind %r dropped", item.kind)
            return True
        # Loaded before the span opens: the span's parent is the job's trace stored here.
        stored = await self.store.load(scope, item.job_id)
        with self._step_span(scope, item, stored):
            return await self._apply(scope, entry_id, item, event, stored)

    def _step_span(
        self, scope: str, item: WorkItem, stored: Stored | None
    ) -> AbstractContextManager[object]:
        """The span of one step, in the job's trace (see :func:`step_parent`).

        Without an exporter and without any context to continue this is a no-op (inside
        :meth:`Tracing.span`), so an untraced deployment pays next to nothing per item.
        """
        job = stored.trace if stored is not None else NONE
        parent, links = step_parent(item.trace, job)
        attributes = {"microdcs.job.id": item.job_id, "microdcs.scope": scope,
                      "microdcs.sfc.work_kind": item.kind}  # fmt: skip
        if item.correlation_id:
            attributes["messaging.message.conversation_id"] = item.correlation_id
        return self.tracing.span(
            f"sfc step {item.kind}", parent=parent, attributes=attributes, links=links
        )

    async def _apply(
        self, scope: str, entry_id: str, item: WorkItem, event: Event, stored: Stored | None
    ) -> bool:
        for attempt in range(_CAS_ATTEMPTS):
            if attempt:
                stored = await self.store.load(scope, item.job_id)
            if stored is None:
                return item.kind != "start" or await self._start(scope, entry_id, item)
            subject = stored.subject or None
            if stored.applied == entry_id:  # stored by a replica that died before the effects
                fx = await self.store.field(scope, item.job_id, "fx")
                await self._perform(subject, item.job_id, decode_effects(fx or b"", item.job_id),
                                    stored.execution.history)  # fmt: skip
                return True
            if entry_id in stored.recent:
                # Applied before, and later changes were stored on top of it (e.g. a claimed
                # Pause that a Resume already undid): applying it again would be wrong.
                # Commands it may have left unsent are re-sent as overdue.
                return True
            recipe = await self._recipe(scope, item.job_id)
            old = stored.execution
            values = await read_tags(self.tags, scope, recipe)
            now = self.clock()
            new, effects = evolve(recipe, old, event, now, tags=values)
            if new is old or new.version == old.version:
                return True
            plan = plan_change(recipe, old, new, effects, now=now,
                               resend_after=self.resend_after)  # fmt: skip
            if await self.store.cas(scope, new, expected=stored.version, entry_id=entry_id,
                                    effects=encode_effects(plan.external), plan=plan):  # fmt: skip
                self.steps += 1
                if self.progress is not None:
                    await self._progress(subject, progress_event(event, effects, new, now), new)
                await self._perform(subject, item.job_id, plan.external, new.history)
                await self._recheck(scope, item.job_id, plan.watched, values)
                return True
        logger.warning("gave up on work item %s of job %s after conflicts", entry_id, item.job_id)
        return False

    async def _start(self, scope: str, entry_id: str, item: WorkItem) -> bool:
        job_id, subject = item.job_id, subject_of_scope(scope)
        source = await self.recipes.recipe(scope, job_id)
        try:
            if source is None:
                raise InvalidRequestError("the job's work master has no SFC recipe")
            recipe = self._compile(source.recipe_json)
        except InputError as exc:
            # The job is Running (the start policy started it): the MES sees it start and
            # abort, with the reason in its job response.
            await self.control.abort_job(subject, job_id, f"invalid recipe: {exc}")
            return True
        # The start policy moved the job to Running before it told the engine, so the MES
        # never sees a command of a job that is not Running; a job stopped since is left.
        if not await self.recipes.is_running(scope, job_id):
            logger.info("job %s of %s no longer running: its recipe is not started", job_id, scope)
            return True
        old = new_execution(job_id, source.parameters)
        values = await read_tags(self.tags, scope, recipe)
        now = self.clock()
        new, effects = evolve(recipe, old, item.event() or _never(), now, tags=values)
        plan = plan_change(recipe, old, new, effects, now=now,
                           resend_after=self.resend_after)  # fmt: skip
        extra: dict[str, bytes | str] = {"recipe": source.recipe_json, "subject": subject or ""}
        # The job's trace, continued by every later item (its step span when recording).
        trace = Carried.current()
        if trace:
            extra |= {"tp": trace.traceparent, "ts": trace.tracestate}
        stored = await self.store.cas(
            scope, new, expected="", entry_id=entry_id, effects=encode_effects(plan.external),
            plan=plan, extra=extra,
        )  # fmt: skip
        if stored:
            self.steps += 1
            self._by_job[(scope, job_id)] = recipe
            if self.progress is not None:
                await self._progress(subject, progress_event(None, effects, new, now), new)
            await self._perform(subject, job_id, plan.external, new.history)
            await self._recheck(scope, job_id, plan.watched, values)
        return True

    async def _recheck(
        self, scope: str, job_id: str, watched: frozenset[str], values: Mapping[str, TagSample]
    ) -> None:
        """A tag the job just started watching changed before its watch was stored: no
        listener saw the watch, so queue the re-evaluation here (see ``tagwatch``)."""
        if watched and await changed_since(self.tags, scope, watched, values):
            await self.store.enqueue(scope, WorkItem("tags", job_id))

    async def _resend(self, scope: str, item: WorkItem, stored: Stored | None) -> None:
        """A command is overdue: send it again (same correlation id) if still awaited."""
        correlation = item.timer[len(RESEND) :]
        run = stored.execution.run_by_correlation(correlation) if stored else None
        if stored is None or run is None or run.status is not RunStatus.RUNNING:
            return
        recipe = await self._recipe(scope, item.job_id)
        action = recipe.action(run.key)
        if action.interaction is not SfcInteraction.PUSH_COMMAND:
            return
        logger.info("command %s overdue; sending it again", correlation)
        if self.progress is not None:
            progress = retried(stored.execution, correlation, self.clock())
            await self._progress(stored.subject or None, progress)
        await self.equipment.send_command(
            stored.subject or None, _command(dispatch_effect(action, run, item.job_id))
        )
        member = timer_member(item.job_id, item.timer)
        await self.store.add_timer(scope, member, self.clock() + self.resend_after)

    async def _progress(
        self, subject: str | None, event: SfcProgressEvent | None, new: Execution | None = None
    ) -> None:
        """Publish a change's progress in the current (step) span's trace context, and the
        job's retained step state when the change entered or left a step."""
        if self.progress is not None and event is not None:
            await self.progress.progress(subject, event, Carried.current())
            state = step_state(event, new) if new is not None else None
            if state is not None:
                await self.progress.step_state(subject, state)

    async def _perform(
        self,
        subject: str | None,
        job_id: str,
        effects: Sequence[External],
        history: Sequence[Sequence[Any]] = (),
    ) -> None:
        for effect in effects:
            if isinstance(effect, DispatchAction):
                await self.equipment.send_command(subject, _command(effect))
            elif isinstance(effect, CancelAction):
                cancel = Cancel(effect.correlation_id, effect.reason, effect.equipment)
                await self.equipment.send_cancel(subject, cancel)
            elif isinstance(effect, JobCompleted | JobStopped):
                await self.control.end_job(subject, job_id, response_data(effect.results, history))
            elif isinstance(effect, JobAborted):
                await self.control.abort_job(subject, job_id, effect.reason)
            elif isinstance(effect, JobSuspended):
                # Interrupted/Suspended: the MES sees the stall and resumes when it is fixed.
                logger.warning("job %s suspended: %s", job_id, effect.reason)
                await self.control.suspend_job(subject, job_id)

    # -- recipes ----------------------------------------------------------------------------
    def _compile(self, recipe_json: bytes) -> CompiledRecipe:
        """Compile once per distinct recipe; raises an :class:`InputError` if invalid."""
        digest = hashlib.sha1(recipe_json).hexdigest()
        compiled = self._compiled.get(digest)
        if compiled is None:
            compiled = compile_recipe(SfcRecipe.from_raw(orjson.loads(recipe_json)),
                                      self.predicates)  # fmt: skip
            if len(self._compiled) > 1024:
                self._compiled.clear()
            self._compiled[digest] = compiled
        return compiled

    async def _recipe(self, scope: str, job_id: str) -> CompiledRecipe:
        """The recipe a job started with (stored with its execution)."""
        key = (scope, job_id)
        compiled = self._by_job.get(key)
        if compiled is None:
            raw = await self.store.field(scope, job_id, "recipe")
            compiled = self._compile(raw or b"{}")
            self._by_job[key] = compiled
            if len(self._by_job) > 10000:
                self._by_job.popitem(last=False)
        return compiled


def _never() -> Any:
    raise AssertionError("a start item always has an event")


def _command(dispatch: DispatchAction) -> Command:
    """The equipment command of a push_command run (what the equipment port sends)."""
    return Command(
        dispatch.type_id,
        dispatch.correlation_id,
        dispatch.parameters,
        dispatch.timeout_seconds,
        dispatch.equipment,
    )
