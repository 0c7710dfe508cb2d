"""The equipment processor: commands out through its outlet, answers in to its receiver."""

from __future__ import annotations

import orjson

from microdcs.core.cloudevent import CloudEvent
from microdcs.equipment.contract import CANCEL_TYPE, Cancel, Command, EquipmentMessage
from microdcs.equipment.processor import EquipmentProcessor
from microdcs.processing.processor import MessageContext


class RecordingOutlet:
    def __init__(self) -> None:
        self.sent: list[tuple[CloudEvent, str]] = []

    async def send(self, event: CloudEvent, correlation_id: str) -> None:
        self.sent.append((event, correlation_id))


async def test_a_command_goes_out_with_its_correlation_id() -> None:
    outlet = RecordingOutlet()
    equipment = EquipmentProcessor(outlet, source="replica")
    await equipment.send_command("ww", Command("t.cut", "J1/A/cut/1", {"Speed": 3}, 2.0))
    [(event, correlation)] = outlet.sent
    assert correlation == "J1/A/cut/1" and event.correlationid == correlation
    assert (event.type, event.subject, event.source) == ("t.cut", "ww", "replica")
    assert orjson.loads(event.data or b"") == {"Speed": 3}
    assert equipment.sent == 1


async def test_a_cancel_goes_out_with_the_runs_correlation_id() -> None:
    outlet = RecordingOutlet()
    equipment = EquipmentProcessor(outlet)
    await equipment.send_cancel(None, Cancel("J1/A/cut/1", "job aborted"))
    [(event, correlation)] = outlet.sent
    assert event.type == CANCEL_TYPE and correlation == "J1/A/cut/1"
    assert orjson.loads(event.data or b"") == {"Reason": "job aborted"}


async def test_any_incoming_event_is_handed_to_the_receiver() -> None:
    received: list[tuple[str | None, EquipmentMessage]] = []

    async def receiver(subject: str | None, message: EquipmentMessage) -> None:
        received.append((subject, message))

    equipment = EquipmentProcessor(RecordingOutlet())
    equipment.set_receiver(receiver)
    event = CloudEvent(type="t.dried", source="eq", subject="ww")
    assert equipment.handles_type(event.type)
    assert await equipment.dispatch(event, MessageContext(event, "mqtt")) == []
    [(subject, message)] = received
    assert subject == "ww" and message.type == "t.dried"
