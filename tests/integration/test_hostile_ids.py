"""Hostile ids, scopes, attributes and payloads against a real runtime (issue 12: 2, 3, 10).

A crafted scope or job id never reaches another scope's jobs; ids and attributes beyond
the limits get a clear answer; deeply nested payloads get ``invalid_payload``. After each,
the runtime still serves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
import pytest

from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_jobs_helpers import (
    INVALID,
    SCOPE,
    Station,
    method_type,
    retained_until,
)
from tests.mesclient import MesClient, next_message

STRUCTURED = "application/cloudevents+json"


@pytest.fixture
async def station(config: AppConfig) -> AsyncIterator[Station]:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        yield Station(mes, config.jobs_prefix, runtime)


def deep_store(depth: int) -> bytes:
    """A Store whose parameter value is ``depth`` nested arrays."""
    value = b"[" * depth + b"]" * depth
    head = b'{"JobOrder": {"JobOrderID": "DEEP", "JobOrderParameters": [{"ID": "p", "Value": '
    return head + value + b"}]}}"


async def test_crafted_scope_cannot_cancel_another_scopes_job(station: Station) -> None:
    victim = Station(station.mes, station.prefix, station.runtime, scope="a")
    attacker = Station(station.mes, station.prefix, station.runtime, scope="a}:job:x")
    assert await victim.store("x}:job:y") == 1
    assert await attacker.do("Cancel", "y") == 2  # unknown in the attacker's own scope
    assert await attacker.store("y") == 1  # and its own job "y" is a different key
    assert await victim.do("Cancel", "x}:job:y") == 1  # the victim's job was untouched
    assert await attacker.do("Cancel", "y") == 1


async def test_crafted_ids_are_listed_and_answered_in_their_own_scope(station: Station) -> None:
    odd = Station(station.mes, station.prefix, station.runtime, scope="s{1}%7D")
    assert await odd.store("j}:job:{k}%") == 1
    assert await odd.do("Start", "j}:job:{k}%") == 1  # no recipe: runs at once
    running = {"JobOrderState": [{"StateNumber": 3}]}
    reply = await odd.call_raw("RequestJobResponseByJobOrderState", running)
    assert [r["JobOrderID"] for r in reply.json()["JobResponses"]] == ["j}:job:{k}%"]
    index = await odd.watch("state-index")  # built by the snapshot script from the key base
    latest = await retained_until(index, lambda m: m.payload and m.json()["jobs"])
    assert [e["job_order_id"] for e in latest.json()["jobs"]] == ["j}:job:{k}%"]


@pytest.mark.parametrize("method", ["Store", "StoreAndStart", "Update"])
async def test_70000_character_job_order_id_is_an_invalid_request(
    station: Station, method: str
) -> None:
    orders = await station.watch("order/#")
    reply = await station.call_raw(method, {"JobOrder": {"JobOrderID": "J" * 70000}})
    assert reply.json()["ReturnStatus"] == INVALID
    assert reply.attributes["mdcserrorkind"] == "invalid_request"
    assert "longer than 256" in reply.attributes["mdcserrormessage"]
    assert await station.store("ok") == 1  # the scope's retained topics keep working
    assert (await next_message(orders)).topic == f"{station.base}/order/ok"


@pytest.mark.parametrize("method", ["Cancel", "Start", "RequestJobResponseByJobOrderID"])
async def test_methods_refuse_ids_beyond_the_limits(station: Station, method: str) -> None:
    for bad in ("J" * 257, "a\nb", "a\x85b", "a+b"):
        reply = await station.call_raw(method, {"JobOrderID": bad})
        assert reply.json()["ReturnStatus"] == INVALID, bad
        assert reply.attributes["mdcserrorkind"] == "invalid_request"


async def test_job_order_id_at_the_limit_is_accepted(station: Station) -> None:
    assert await station.store("J" * 256) == 1
    assert await station.store("J" * 257) == INVALID
    assert await station.do("Cancel", "J" * 256) == 1


@pytest.mark.parametrize("depth", [80, 300, 1000, 1200])
async def test_deeply_nested_store_is_an_invalid_payload(station: Station, depth: int) -> None:
    reply = await station.call_raw("Store", payload=deep_store(depth))
    assert reply.json()["ReturnStatus"] == INVALID
    assert reply.attributes["mdcserrorkind"] == "invalid_payload"
    assert station.runtime is not None
    assert station.runtime.mqtt.stats.failed.get("internal_error", 0) == 0
    assert await station.store("after") == 1


async def test_nesting_within_the_limit_is_stored(station: Station) -> None:
    assert await station.call("Store", orjson.loads(deep_store(50))) == 1


async def test_a_configured_nesting_limit_reaches_the_processor(config: AppConfig) -> None:
    """The transport hands its limit to the processor with each message (the limit is
    the replica's setting, not a default baked into the processor)."""
    tight = replace(config, limits=replace(config.limits, nesting_depth=8))
    async with running(tight) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        reply = await station.call_raw("Store", payload=deep_store(10))
        assert reply.attributes["mdcserrorkind"] == "invalid_payload"
        assert await station.call("Store", orjson.loads(deep_store(3))) == 1


def structured(data: object, **attributes: object) -> bytes:
    envelope = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "mes/test",
                "type": method_type("Store"), "subject": SCOPE, "data": data}  # fmt: skip
    envelope.update(attributes)
    return orjson.dumps(envelope)


async def test_structured_event_with_deep_data_is_an_invalid_payload(station: Station) -> None:
    data = {"JobOrder": {"JobOrderID": "S", "JobOrderParameters": [{"ID": "p", "Value": 0}]}}
    payload = structured(data).replace(b'"Value":0', b'"Value":' + b"[" * 300 + b"]" * 300)
    reply = await station.mes.request(
        station.commands, method_type("Store"), payload=payload, content_type=STRUCTURED
    )
    assert reply.ce_attributes()["mdcserrorkind"] == "invalid_payload"
    assert await station.store("after") == 1


@pytest.mark.parametrize(
    "attributes",
    [{"id": "req-1\nsecond-line"}, {"type": "T" * 10000}, {"source": "s\x00"},
     {"correlationid": "c\u0085"}, {"id": "i" * 1025}],
    ids=["newline-id", "long-type", "nul-source", "c1-extension", "long-id"],
)  # fmt: skip
async def test_attributes_beyond_the_limits_are_an_invalid_event(
    station: Station, attributes: dict[str, object]
) -> None:
    payload = structured({"JobOrder": {"JobOrderID": "A"}}, **attributes)
    reply = await station.mes.request(
        station.commands, method_type("Store"), payload=payload, content_type=STRUCTURED
    )
    assert reply.ce_attributes()["mdcserrorkind"] == "invalid_event"
    assert await station.store("after") == 1
    assert await station.do("Cancel", "A") == 2  # nothing was stored
