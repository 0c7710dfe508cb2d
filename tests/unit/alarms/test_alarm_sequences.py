"""Sample sequences through the pure alarm model: hysteresis, delays, latching."""

from __future__ import annotations

from collections.abc import Sequence

from microdcs.alarms.contract import AlarmAction, AlarmKind, AlarmState
from microdcs.alarms.definitions import AlarmDefinition
from microdcs.alarms.states import (
    CLEARED,
    RAISED,
    AlarmRecord,
    TimerKind,
    Transition,
    apply_action,
    evaluate,
    timer_expired,
)
from microdcs.plantdata.contract import Quality

T0 = 1_000_000.0


def high(**options: object) -> AlarmDefinition:
    return AlarmDefinition(
        id="TT1.H", tag="TT1", kind=AlarmKind.HIGH, setpoint=50.0, deadband=5.0, **options
    )  # type: ignore[arg-type]


class Run:
    """Feeds samples (and due timers) through the model and keeps the journal events."""

    def __init__(self, definition: AlarmDefinition) -> None:
        self.definition = definition
        self.record = AlarmRecord()
        self.events: list[str] = []
        self.timers: dict[TimerKind, float] = {}

    def _take(self, result: Transition | None) -> None:
        if result is None:
            return
        for kind in result.cancel_timers:
            self.timers.pop(kind, None)
        for request in result.set_timers:
            self.timers[request.kind] = request.at
        if result.store:
            self.record = result.record
        if result.event is not None:
            self.events.append(result.event)

    def samples(self, values: Sequence[float], start: float = T0, step: float = 1.0) -> None:
        for i, value in enumerate(values):
            self.at(start + i * step, value)

    def at(self, now: float, value: float) -> None:
        """A sample at ``now``, after every timer due before it fired."""
        self.until(now)
        self._take(evaluate(self.definition, self.record, value, Quality.GOOD, now))

    def until(self, now: float) -> None:
        for kind, due in sorted(self.timers.items(), key=lambda item: item[1]):
            if due <= now:
                self.timers.pop(kind)
                self._take(timer_expired(self.definition, self.record, kind, due))


def test_chatter_inside_the_deadband_is_one_activation_and_no_return() -> None:
    run = Run(high())
    run.samples([55, 49.9, 51, 49.9])
    assert run.events == [RAISED]
    assert run.record.state is AlarmState.UNACKNOWLEDGED


def test_a_value_below_the_deadband_returns() -> None:
    run = Run(high())
    run.samples([55, 44.9])
    assert run.events == [RAISED, CLEARED]
    assert run.record.state is AlarmState.RETURNED_UNACKNOWLEDGED


def test_an_excursion_shorter_than_the_on_delay_raises_nothing() -> None:
    run = Run(high(on_delay=10.0))
    run.at(T0, 60)
    run.at(T0 + 5, 40)
    run.until(T0 + 60)
    assert run.events == []
    assert run.record.state is AlarmState.NORMAL and not run.timers


def test_an_excursion_longer_than_the_on_delay_raises_once_when_the_delay_ends() -> None:
    run = Run(high(on_delay=10.0))
    run.at(T0, 60)
    run.at(T0 + 3, 61)
    run.until(T0 + 9.9)
    assert run.events == []
    run.until(T0 + 10)
    assert run.events == [RAISED]
    assert run.record.active_since == T0 + 10
    run.at(T0 + 11, 62)
    assert run.events == [RAISED]


def test_the_off_delay_holds_the_alarm_until_it_has_stayed_clear() -> None:
    run = Run(high(off_delay=5.0))
    run.at(T0, 60)
    run.at(T0 + 1, 40)
    run.at(T0 + 3, 60)  # back before the off-delay ended: still one activation
    run.at(T0 + 4, 40)
    run.until(T0 + 8.9)
    assert run.events == [RAISED]
    run.until(T0 + 9)
    assert run.events == [RAISED, CLEARED]


def test_a_latched_alarm_stays_until_reset() -> None:
    run = Run(high(latching=True))
    run.samples([60, 40])
    assert run.record.state is AlarmState.LATCHED
    ack = apply_action(run.definition, run.record, AlarmAction.ACKNOWLEDGE, "op", "", T0 + 5)
    assert not isinstance(ack, Transition)
    run.samples([41, 42], start=T0 + 10)
    assert run.record.state is AlarmState.LATCHED
    reset = apply_action(run.definition, run.record, AlarmAction.RESET, "op", "seen", T0 + 20)
    assert isinstance(reset, Transition)
    assert reset.record.state is AlarmState.NORMAL and not reset.record.latched


def test_an_acknowledged_latching_alarm_latches_on_return() -> None:
    run = Run(high(latching=True))
    run.at(T0, 60)
    ack = apply_action(run.definition, run.record, AlarmAction.ACKNOWLEDGE, "op", "", T0 + 1)
    assert isinstance(ack, Transition)
    run.record = ack.record
    run.at(T0 + 2, 40)
    assert run.record.state is AlarmState.LATCHED


def test_shelving_hides_raises_and_expiry_brings_the_active_alarm_back() -> None:
    run = Run(high())
    shelve = apply_action(
        run.definition, run.record, AlarmAction.SHELVE, "op", "maintenance", T0,
        shelve_seconds=30.0,
    )  # fmt: skip
    assert isinstance(shelve, Transition)
    run._take(shelve)
    run.at(T0 + 1, 60)
    assert run.record.state is AlarmState.SHELVED and run.record.condition
    run.until(T0 + 30)
    assert run.record.state is AlarmState.UNACKNOWLEDGED
    assert run.events[-1] == "shelve_expired"


def test_deviation_and_low_limits() -> None:
    deviation = AlarmDefinition(
        id="d", tag="t", kind=AlarmKind.DEVIATION, setpoint=5.0, target=100.0, deadband=1.0
    )
    run = Run(deviation)
    run.samples([103, 94.5, 96.5, 95.5])
    assert run.events == [RAISED, CLEARED]
    low = Run(AlarmDefinition(id="l", tag="t", kind=AlarmKind.LOW, setpoint=10.0, deadband=2.0))
    low.samples([9, 11, 12.5])
    assert low.events == [RAISED, CLEARED]
