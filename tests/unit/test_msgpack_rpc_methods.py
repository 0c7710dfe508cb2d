"""Parameter checks of publish/heartbeat."""

from __future__ import annotations

from typing import Any

import pytest

from microdcs.processing.routing import Intent
from microdcs.transports.msgpack_rpc.errors import RpcError
from microdcs.transports.msgpack_rpc.methods import decode_event, heartbeat_result, parse_publish
from microdcs.transports.msgpack_rpc.protocol import UnhashableMap

EVENT = {"specversion": "1.0", "id": "1", "source": "s", "type": "t"}


def test_publish_takes_an_event_and_optional_metadata() -> None:
    call = parse_publish([EVENT, {"intent": "data", "x": 1}])
    assert call.event == EVENT
    assert call.intent is Intent.DATA
    assert call.metadata == {"intent": "data", "x": 1}
    assert parse_publish([EVENT]).intent is None
    assert parse_publish([EVENT, None]).metadata == {}


@pytest.mark.parametrize(
    "params",
    [[], [EVENT, {}, 3], ["not a map"], [[EVENT]], [EVENT, "meta"], [EVENT, {1: "x"}]],
)
def test_publish_params_of_the_wrong_type_are_invalid_params(params: list[Any]) -> None:
    with pytest.raises(RpcError) as caught:
        parse_publish(params)
    assert caught.value.kind == "invalid_params"


def test_unknown_intent_is_invalid_params() -> None:
    with pytest.raises(RpcError) as caught:
        parse_publish([EVENT, {"intent": "gossip"}])
    assert caught.value.kind == "invalid_params"


def test_invalid_envelope_keeps_the_cloudevent_error_kind() -> None:
    with pytest.raises(RpcError) as caught:
        decode_event({"specversion": "1.0", "id": "1", "source": "s"})
    assert caught.value.kind == "invalid_event"


@pytest.mark.parametrize(
    "data", [{1: "int keys are not JSON"}, {"x": UnhashableMap([([1], 2)])}, {"t": object()}]
)
def test_data_that_cannot_be_encoded_is_invalid_payload(data: Any) -> None:
    with pytest.raises(RpcError) as caught:
        decode_event({**EVENT, "datacontenttype": "application/json", "data": data})
    assert caught.value.kind == "invalid_payload"


def test_msgpack_data_travels_natively() -> None:
    event = decode_event({**EVENT, "datacontenttype": "application/msgpack", "data": {1: b"\x00"}})
    assert event.data == b"\x81\x01\xc4\x01\x00"


def test_heartbeat_request_echoes_its_timestamp() -> None:
    assert heartbeat_result([1700000000.5]) == 1700000000.5
    assert heartbeat_result([]) is None
