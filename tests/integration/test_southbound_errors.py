"""Bad input on a southbound processor's topics: an error event on its own ``events``
topic, never anything on ``commands`` (which would send a command towards equipment)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from typing import ClassVar

import pytest

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction
from tests.conftest import running
from tests.integration.test_msgpack_rpc_helpers import greeting_event, raw_client, serving
from tests.mesclient import MesClient, Received, ce_properties

READING_TYPE = "com.example.test.southbound.reading.v1"
#: How long to wait for messages that must not come (an echo loop would show by then).
QUIET_SECONDS = 1.0


@dataclass(kw_only=True)
class Reading(Model):
    __ce_type__: ClassVar[str] = READING_TYPE
    value: float


class GaugeProcessor(CloudEventProcessor):
    """A southbound processor with one typed handler: readings from equipment."""

    direction = Direction.SOUTHBOUND
    default_prefix = "test/gauge"

    def __init__(self, *, source: str) -> None:
        super().__init__(source=source)
        self.readings: list[float] = []

    @handles(Reading)
    async def reading(self, message: Reading, context: MessageContext) -> None:
        self.readings.append(message.value)


def _prefix(config: AppConfig) -> str:
    return config.greeting_prefix.replace("greeting", "gauge")


def _bind(prefix: str, processors: list[GaugeProcessor]) -> object:
    def bind(binder: Binder) -> None:
        processor = GaugeProcessor(source=binder.source)
        processors.append(processor)
        binder.bind(processor, prefix=prefix, rpc=False)

    return bind


async def _quiet(queue: asyncio.Queue[Received]) -> list[Received]:
    """What else arrives within :data:`QUIET_SECONDS`."""
    await asyncio.sleep(QUIET_SECONDS)
    found = []
    while not queue.empty():
        found.append(queue.get_nowait())
    return found


async def _next_event(queue: asyncio.Queue[Received]) -> Received:
    """The next message on an ``events`` topic; anything on ``commands`` fails the test."""
    async with asyncio.timeout(5):
        while True:
            message = await queue.get()
            assert not message.topic.endswith("/commands"), message
            if message.topic.endswith("/events"):
                return message


def _not_metadata(messages: list[Received]) -> list[str]:
    return [m.topic for m in messages if not m.topic.endswith("/metadata")]


@pytest.mark.parametrize(
    ("ce_type", "payload", "kind"),
    [
        ("com.example.foreign.v1", b'{"x": 1}', "unknown_type"),
        (READING_TYPE, b"{not json", "invalid_payload"),
    ],
    ids=["foreign-type", "undecodable-data"],
)
async def test_bad_event_on_a_southbound_data_topic_is_an_error_event_not_a_command(
    config: AppConfig, ce_type: str, payload: bytes, kind: str
) -> None:
    prefix = _prefix(config)
    processors: list[GaugeProcessor] = []
    async with (
        running(config, [_bind(prefix, processors)]) as runtime,  # type: ignore[list-item]
        MesClient(config.mqtt.port) as equipment,
    ):
        seen = await equipment.watch(f"{prefix}/#")
        props = ce_properties(ce_type, event_id="bad-1")
        await equipment.publish(f"{prefix}/line1/data", payload, props)
        error = await _next_event(seen)
        assert error.topic == f"{prefix}/line1/events"
        assert error.attributes["mdcserrorkind"] == kind
        assert error.attributes["causationid"] == "bad-1"
        # The processor receives its own error event (it subscribes to events) and must
        # not answer it: still exactly one, and nothing ever on commands.
        assert _not_metadata(await _quiet(seen)) == []
        assert runtime.mqtt.stats.failed[kind] == 1
        # And it still serves good readings.
        good = ce_properties(READING_TYPE, event_id=str(uuid.uuid4()))
        await equipment.publish(f"{prefix}/line1/data", b'{"value": 2.5}', good)
        async with asyncio.timeout(5):
            while not processors[0].readings:
                await asyncio.sleep(0.02)
        assert processors[0].readings == [2.5]


async def test_with_two_replicas_a_bad_event_is_reported_once_and_never_re_reported(
    config: AppConfig,
) -> None:
    prefix = _prefix(config)
    second = replace(config, instance_id=f"{config.instance_id}-b")
    async with (
        running(config, [_bind(prefix, [])]) as a,  # type: ignore[list-item]
        running(second, [_bind(prefix, [])]) as b,  # type: ignore[list-item]
        MesClient(config.mqtt.port) as equipment,
    ):
        seen = await equipment.watch(f"{prefix}/#")
        # Mosquitto hands each filter's messages round robin: one reading on events first
        # puts every report on the replica that did not send it.
        good = ce_properties(READING_TYPE, event_id="good-1")
        await equipment.publish(f"{prefix}/line1/events", b'{"value": 1.0}', good)
        assert (await _next_event(seen)).attributes["id"] == "good-1"
        errors = []
        for n in range(4):  # one at a time, each report back before the next
            props = ce_properties("com.example.foreign.v1", event_id=f"bad-{n}")
            await equipment.publish(f"{prefix}/line1/data", b"{}", props)
            errors.append(await _next_event(seen))
            await asyncio.sleep(0.1)
        assert sorted(e.attributes["causationid"] for e in errors) == [f"bad-{n}" for n in range(4)]
        assert _not_metadata(await _quiet(seen)) == []
        failed = a.mqtt.stats.failed["unknown_type"] + b.mqtt.stats.failed["unknown_type"]
        assert failed == 4  # the reports coming back are not failures of their own


async def test_undecodable_message_on_an_equipment_data_topic_reports_in_its_scope(
    config: AppConfig,
) -> None:
    prefix = config.equipment_prefix
    async with running(config), MesClient(config.mqtt.port) as equipment:
        seen = await equipment.watch(f"{prefix}/#")
        # No CloudEvent attributes at all: nothing to take the scope from but the topic.
        await equipment.publish(f"{prefix}/cell7/data", b"\x00garbage")
        error = await _next_event(seen)
        assert error.topic == f"{prefix}/cell7/events"
        assert error.attributes["mdcserrorkind"] == "invalid_event"
        assert _not_metadata(await _quiet(seen)) == []


async def test_a_southbound_processor_does_not_answer_bad_metadata(config: AppConfig) -> None:
    prefix = _prefix(config)
    async with (
        running(config, [_bind(prefix, [])]) as runtime,  # type: ignore[list-item]
        MesClient(config.mqtt.port) as equipment,
    ):
        everything = await equipment.watch(f"{prefix}/#")
        props = ce_properties("com.example.equipment.description.v1", event_id="m-1")
        await equipment.publish(f"{prefix}/line1/metadata", b"{}", props)
        assert _not_metadata(await _quiet(everything)) == []
        assert runtime.mqtt.stats.failed["unknown_type"] >= 1


async def test_over_rpc_a_southbound_error_is_the_callers_result_and_nothing_is_pushed() -> None:
    gauge = GaugeProcessor(source="microdcs/test")
    event = greeting_event(type=READING_TYPE, data={"value": "not a number"}, subject="line1")
    async with serving(processors=[gauge]) as server, raw_client(server.port) as client:
        response = await client.call(1, "publish", event, {"intent": "data"})
        assert response[2] is None
        [error] = response[3]
        assert error["mdcserrorkind"] == "invalid_payload"
        # No ``cloudevent`` notification (a command or anything else) follows.
        with pytest.raises(TimeoutError):
            await client.recv(within=QUIET_SECONDS)
    assert gauge.readings == []
