"""The equipment wire contract: commands out, answers and events in."""

from __future__ import annotations

import orjson

from microdcs.app.simulator import Emission
from microdcs.core.cloudevent import CloudEvent
from microdcs.equipment.contract import command_event, read_message


def test_a_command_carries_the_correlation_id_and_parameters() -> None:
    event = command_event(source="s", subject="ww", type_id="t.cut", correlation_id="J/A/cut/1",
                          parameters={"Speed": 3}, timeout_seconds=2.5)  # fmt: skip
    assert event.correlationid == "J/A/cut/1"
    assert orjson.loads(event.data or b"") == {"Speed": 3}
    assert event.expiryinterval == 3


def test_an_answer_with_an_error_kind_fails_the_action() -> None:
    event = CloudEvent(type="t.cut.response", source="eq",
                       extensions={"correlationid": "c", "mdcserrorkind": "equipment_error",
                                   "mdcserrormessage": "jam"})  # fmt: skip
    message = read_message(event)
    assert message.failed and message.reason == "equipment_error: jam"


def test_garbage_data_becomes_an_empty_result_not_an_error() -> None:
    event = CloudEvent(type="t.evt", source="eq", datacontenttype="application/json", data=b"{")
    message = read_message(event)
    assert not message.failed and message.result == {} and message.correlation_id is None


def test_a_scalar_result_is_wrapped() -> None:
    event = CloudEvent(type="t", source="eq", datacontenttype="application/json", data=b"5")
    assert read_message(event).result == {"value": 5}


def test_emissions_parse_type_and_interval() -> None:
    assert Emission.parse("com.example.dried.v1:0.5") == Emission("com.example.dried.v1", 0.5)
