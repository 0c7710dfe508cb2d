"""The alarm manager: evaluates alarm definitions on every stored tag change, fires alarm
timers and applies operator actions, on any replica, each transition once.

It is the plant data store's :class:`~microdcs.plantdata.contract.TagChangeListener`, the
:class:`~microdcs.alarms.contract.AlarmReader` and the
:class:`~microdcs.alarms.contract.AlarmActions` of the replica. All three inputs go
through :meth:`AlarmManager._apply`: decide with the pure state machine
(:mod:`microdcs.alarms.states`) on the record as stored, then store the transition with a
compare-and-swap on the record's version. A lost compare-and-swap (another replica stored
first) re-reads the record and decides again, so an alarm two replicas see go active is
raised once, and an acknowledgement is never overwritten by a stale record.

Fast path: records are cached with their version. A data event costs one ``HMGET`` of the
versions of the alarms on its tags (and of the definitions), pipelined with everything
else; only a record whose version moved is read again, and only a transition writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from microdcs.alarms.codec import (
    alarm_view,
    definition_bytes,
    definition_from_bytes,
    record_bytes,
    record_from_bytes,
)
from microdcs.alarms.contract import (
    ActionOutcome,
    AlarmAction,
    AlarmView,
    JournalEntry,
)
from microdcs.alarms.definitions import AlarmDefinition
from microdcs.alarms.journal import AlarmJournal, entry_fields
from microdcs.alarms.ports import AlarmEventSink
from microdcs.alarms.states import (
    ActionRefused,
    AlarmRecord,
    TimerKind,
    Transition,
    apply_action,
    evaluate,
    timer_expired,
)
from microdcs.alarms.store import AlarmStore, DueTimer, TimerOp
from microdcs.core.errors import InputError
from microdcs.plantdata.contract import TagChange

logger = logging.getLogger(__name__)

#: Compare-and-swap attempts before a transition is given up (logged): each lost attempt
#: means another replica stored a change of the same alarm meanwhile.
_CAS_ATTEMPTS = 20
#: Why an action on an alarm that is not defined was refused.
UNKNOWN_ALARM = "unknown_alarm"

Decide = Callable[[AlarmRecord, float], "Transition | ActionRefused | None"]


@dataclass(slots=True)
class ScopeAlarms:
    """The definitions of one scope as this replica last read them."""

    version: int
    by_id: dict[str, AlarmDefinition]
    by_tag: dict[str, tuple[AlarmDefinition, ...]] = field(default_factory=dict)
    #: When the version was last checked (monotonic seconds).
    checked: float = 0.0

    @classmethod
    def of(cls, version: int, definitions: Sequence[AlarmDefinition], now: float) -> ScopeAlarms:
        by_tag: dict[str, list[AlarmDefinition]] = defaultdict(list)
        for definition in definitions:
            by_tag[definition.tag].append(definition)
        return cls(
            version,
            {d.id: d for d in definitions},
            {tag: tuple(ds) for tag, ds in by_tag.items()},
            now,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :meth:`AlarmManager._apply` did: the transition stored, the refusal, or
    nothing (``None`` both)."""

    transition: Transition | None = None
    refused: ActionRefused | None = None


_NOTHING = Outcome()


class AlarmManager:
    """Alarm evaluation, timers, actions and reading for every scope of one replica."""

    def __init__(
        self,
        store: AlarmStore,
        *,
        events: AlarmEventSink | None = None,
        on_change: Callable[[str], None] | None = None,
        on_timer: Callable[[], None] | None = None,
        refresh: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.journal_reader = AlarmJournal(store)
        self.events = events
        self.on_change = on_change
        self.on_timer = on_timer
        self.refresh = refresh
        self.clock = clock
        #: Transitions this replica stored, and compare-and-swaps it lost (metrics).
        self.transitions = 0
        self.conflicts = 0
        self._scopes: dict[str, ScopeAlarms] = {}
        self._records: dict[tuple[str, str], AlarmRecord] = {}

    # -- definitions ----------------------------------------------------------------------
    async def put_definition(self, scope: str, definition: AlarmDefinition) -> None:
        await self.store.put_definition(scope, definition.id, definition_bytes(definition))
        self._scopes.pop(scope, None)

    async def delete_definition(self, scope: str, alarm: str) -> None:
        await self.store.delete_definition(scope, alarm)
        self._scopes.pop(scope, None)
        self._records.pop((scope, alarm), None)
        if self.on_change is not None:
            self.on_change(scope)

    async def _load(self, scope: str) -> ScopeAlarms:
        version, raw = await self.store.definitions(scope)
        definitions: list[AlarmDefinition] = []
        for alarm, data in raw.items():
            try:
                definitions.append(definition_from_bytes(data))
            except (InputError, ValueError) as exc:  # stored by an older or newer replica
                logger.error("alarm definition %r of scope %s unreadable: %s", alarm, scope, exc)
        alarms = ScopeAlarms.of(version, definitions, time.monotonic())
        self._scopes[scope] = alarms
        return alarms

    async def _fresh(self, scope: str) -> ScopeAlarms:
        """The scope's definitions, checked against the stored version now."""
        alarms = self._scopes.get(scope)
        if alarms is not None:
            version, _ = await self.store.versions(scope, ())
            if version == alarms.version:
                alarms.checked = time.monotonic()
                return alarms
        return await self._load(scope)

    # -- tag changes (the TagChangeListener) ----------------------------------------------
    async def tags_changed(self, scope: str, changes: Sequence[TagChange]) -> None:
        alarms = self._scopes.get(scope)
        if alarms is None:
            alarms = await self._load(scope)
        targets = _targets(alarms, changes)
        if not targets:
            if time.monotonic() - alarms.checked < self.refresh:
                return
            alarms = await self._fresh(scope)
            targets = _targets(alarms, changes)
            if not targets:
                return
        ids = list(targets)
        version, versions = await self.store.versions(scope, ids)
        if version != alarms.version:
            alarms = await self._load(scope)
            targets = _targets(alarms, changes)
            ids = list(targets)
            version, versions = await self.store.versions(scope, ids)
        alarms.checked = time.monotonic()
        moved = [
            alarm for alarm, stored in zip(ids, versions, strict=True)
            if (cached := self._records.get((scope, alarm))) is None or cached.version != stored
        ]  # fmt: skip
        if moved:
            for alarm, stored_record in zip(
                moved, await self.store.records(scope, moved), strict=True
            ):
                self._records[(scope, alarm)] = record_from_bytes(stored_record.data)
        await asyncio.gather(
            *(self._samples(scope, alarms.by_id[alarm], items) for alarm, items in targets.items())
        )

    async def _samples(
        self, scope: str, definition: AlarmDefinition, changes: Sequence[TagChange]
    ) -> None:
        for change in changes:
            decide = _sample_decider(definition, change)
            await self._apply(scope, definition, decide)

    # -- timers ---------------------------------------------------------------------------
    async def fire(self, scope: str, timer: DueTimer, lease_until: float) -> None:
        """A claimed timer (the timer task's callback)."""
        alarms = await self._fresh(scope)
        definition = alarms.by_id.get(timer.alarm)
        try:
            kind = TimerKind(timer.kind)
        except ValueError:
            definition = None
        if definition is None:
            await self.store.drop_timer(scope, timer, lease_until)
            return
        await self._refresh_record(scope, timer.alarm)
        outcome = await self._apply(
            scope, definition, lambda record, now: timer_expired(definition, record, kind, now),
            fired=timer, lease=lease_until,
        )  # fmt: skip
        if outcome.transition is None:
            await self.store.drop_timer(scope, timer, lease_until)

    # -- operator actions (AlarmActions) --------------------------------------------------
    async def act(
        self,
        scope: str,
        action: AlarmAction,
        alarms: Sequence[str],
        *,
        operator: str,
        comment: str = "",
        shelve_seconds: float | None = None,
    ) -> Sequence[ActionOutcome]:
        defined = await self._fresh(scope)

        async def one(alarm: str) -> ActionOutcome:
            definition = defined.by_id.get(alarm)
            if definition is None:
                return ActionOutcome(alarm, False, None, UNKNOWN_ALARM,
                                     reason=f"no alarm {alarm!r} in this scope")  # fmt: skip
            await self._refresh_record(scope, alarm)

            def decide(record: AlarmRecord, now: float) -> Transition | ActionRefused:
                return apply_action(definition, record, action, operator, comment, now,
                                    shelve_seconds)  # fmt: skip

            outcome = await self._apply(scope, definition, decide, operator=operator,
                                        comment=comment)  # fmt: skip
            if outcome.refused is not None:
                refused = outcome.refused
                return ActionOutcome(alarm, False, refused.state, refused.error,
                                     reason=refused.reason)  # fmt: skip
            state = self._records.get((scope, alarm))
            return ActionOutcome(alarm, True, state.state if state is not None else None)

        return await asyncio.gather(*(one(alarm) for alarm in dict.fromkeys(alarms)))

    # -- reading (AlarmReader) ------------------------------------------------------------
    async def alarms(self, scope: str) -> Sequence[AlarmView]:
        return (await self.snapshot(scope))[1]

    async def snapshot(self, scope: str) -> tuple[int, list[AlarmView]]:
        """The scope's change counter and every alarm, as stored (the retained list)."""
        seq = await self.store.seq(scope)
        alarms = await self._fresh(scope)
        records = await self.store.all_records(scope)
        views: list[AlarmView] = []
        for alarm, definition in sorted(alarms.by_id.items()):
            stored = records.get(alarm)
            record = record_from_bytes(stored.data if stored is not None else None)
            views.append(alarm_view(scope, definition, record))
        return seq, views

    async def journal(
        self, scope: str, start: float, end: float, limit: int = 1000
    ) -> Sequence[JournalEntry]:
        return await self.journal_reader.entries(scope, start, end, limit)

    # -- the compare-and-swap loop --------------------------------------------------------
    async def _refresh_record(self, scope: str, alarm: str) -> None:
        (stored,) = await self.store.records(scope, [alarm])
        self._records[(scope, alarm)] = record_from_bytes(stored.data)

    async def _apply(
        self,
        scope: str,
        definition: AlarmDefinition,
        decide: Decide,
        *,
        fired: DueTimer | None = None,
        lease: float = 0.0,
        operator: str | None = None,
        comment: str | None = None,
    ) -> Outcome:
        key = (scope, definition.id)
        for _ in range(_CAS_ATTEMPTS):
            record = self._records.get(key) or record_from_bytes(None)
            now = self.clock()
            result = decide(record, now)
            if result is None:
                return _NOTHING
            if isinstance(result, ActionRefused):
                return Outcome(refused=result)
            timers = _timer_ops(result)
            if not result.store:
                await self.store.set_timers(scope, definition.id, timers)
                self._woken(timers)
                return Outcome(result)
            entry = _entry(scope, definition, result, now, operator, comment)
            reply = await self.store.cas(
                scope, definition.id, expected=record.version, version=result.record.version,
                record=record_bytes(result.record), timers=timers,
                journal=entry_fields(entry) if entry is not None else (),
                fired=fired, fired_lease=lease,
            )  # fmt: skip
            if reply.stored:
                self._records[key] = result.record
                self.transitions += 1
                await self._stored(scope, definition, result, entry, timers)
                return Outcome(result)
            if reply.undefined:
                self._records.pop(key, None)
                return _NOTHING
            self.conflicts += 1
            await self._refresh_record(scope, definition.id)
        logger.warning("alarm %s of scope %s: gave up after %d conflicts", definition.id,
                       scope, _CAS_ATTEMPTS)  # fmt: skip
        return _NOTHING

    async def _stored(
        self,
        scope: str,
        definition: AlarmDefinition,
        transition: Transition,
        entry: JournalEntry | None,
        timers: Sequence[TimerOp],
    ) -> None:
        self._woken(timers)
        if self.on_change is not None:
            self.on_change(scope)
        if transition.emit and entry is not None and self.events is not None:
            await self.events.alarm_event(alarm_view(scope, definition, transition.record), entry)

    def _woken(self, timers: Sequence[TimerOp]) -> None:
        if self.on_timer is not None and any(op.due is not None for op in timers):
            self.on_timer()


def _targets(alarms: ScopeAlarms, changes: Sequence[TagChange]) -> dict[str, list[TagChange]]:
    """The changes each alarm of the scope must evaluate, in order, by alarm id."""
    targets: dict[str, list[TagChange]] = {}
    by_tag = alarms.by_tag
    for change in changes:
        for definition in by_tag.get(change.sample.tag, ()):
            targets.setdefault(definition.id, []).append(change)
    return targets


def _sample_decider(definition: AlarmDefinition, change: TagChange) -> Decide:
    sample, previous = change.sample, change.previous
    previous_value = previous.value if previous is not None else None
    previous_time = previous.source_time if previous is not None else None

    def decide(record: AlarmRecord, now: float) -> Transition | None:
        return evaluate(
            definition, record, sample.value, sample.quality, now,
            sample_time=sample.source_time, previous_value=previous_value,
            previous_time=previous_time,
        )  # fmt: skip

    return decide


def _timer_ops(transition: Transition) -> list[TimerOp]:
    ops = [TimerOp(kind.value, None) for kind in transition.cancel_timers]
    ops += [TimerOp(request.kind.value, request.at) for request in transition.set_timers]
    return ops


def _entry(
    scope: str,
    definition: AlarmDefinition,
    transition: Transition,
    now: float,
    operator: str | None,
    comment: str | None,
) -> JournalEntry | None:
    if transition.event is None:
        return None
    record = transition.record
    return JournalEntry(
        scope=scope,
        alarm=definition.id,
        at=now,
        event=transition.event,
        state=record.state,
        previous=transition.previous,
        priority=definition.priority,
        value=record.value,
        operator=operator,
        comment=comment or None,
    )
