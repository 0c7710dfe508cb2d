"""The AsyncAPI document's content (issue 20, item 5), built from processors without a
broker: channels per topic pattern and intent, operations per handled and emitted type,
payloads from the JSON Schemas, CloudEvents attributes as headers, request/reply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from microdcs.app.asyncapi import asyncapi_document
from microdcs.app.schemacatalog import SchemaCatalog, default_directories
from microdcs.models import Model, hidden
from microdcs.processing.processor import CloudEventProcessor, MessageContext, emits, handles
from microdcs.processing.routing import Direction, Intent
from microdcs.transports.mqtt.topics import TopicLayout

SCHEMA_ID = "https://example.com/schemas/oven.schema.json"


@dataclass(kw_only=True)
class Heated(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.heated.v1"
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA_ID}#/$defs/Heated"

    Temperature: float


@dataclass(kw_only=True)
class Cooled(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.cooled.v1"

    Temperature: float
    Reason: str | None = None


@dataclass(kw_only=True)
class HeatResponse(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.heat.v1"
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA_ID}#/$defs/HeatResponse"

    Accepted: bool


@dataclass(kw_only=True)
class Heat(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.heat.v1"
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA_ID}#/$defs/Heat"
    __response_type__ = HeatResponse

    Setpoint: float
    _batch_key: str | None = hidden()


@emits(Heated)
class Oven(CloudEventProcessor):
    """Answers Heat; declares Heated on the class and Cooled on its handler."""

    direction = Direction.NORTHBOUND
    default_prefix = "app/oven"

    @emits(Cooled)
    @handles(Heat)
    async def heat(self, message: Heat, context: MessageContext) -> Model:
        return message.response(Accepted=True)


class OvenOnData(Oven):
    """The same processor listening on data instead of commands (an intents override)."""

    subscribe_intents = (Intent.DATA,)
    publish_intents = (Intent.EVENTS,)


class Device(CloudEventProcessor):
    """Southbound: subscribes to its devices' metadata as well as their events."""

    direction = Direction.SOUTHBOUND
    default_prefix = "app/devices"


@dataclass(frozen=True)
class Bound:
    processor: CloudEventProcessor
    layout: TopicLayout


OVEN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "$defs": {
        "Heat": {
            "type": "object",
            "properties": {"Setpoint": {"$ref": "#/$defs/Celsius"}},
            "required": ["Setpoint"],
        },
        "HeatResponse": {"type": "object", "properties": {"Accepted": {"type": "boolean"}}},
        "Heated": {"type": "object", "properties": {"Temperature": {"$ref": "#/$defs/Celsius"}}},
        "Celsius": {"type": "number", "minimum": -273.15, "maximum": 400},
    },
}


@pytest.fixture
def catalog(tmp_path: Path) -> SchemaCatalog:
    (tmp_path / "oven.schema.json").write_bytes(orjson.dumps(OVEN_SCHEMA))
    return SchemaCatalog(default_directories([tmp_path]))  # and microdcs's own schemas


def document(catalog: SchemaCatalog, *processors: CloudEventProcessor) -> dict[str, Any]:
    bound = [Bound(p, TopicLayout(type(p).default_prefix)) for p in processors]
    return asyncapi_document(bound, catalog, server=("broker.example", 8883, True))


def addresses(doc: dict[str, Any]) -> dict[str, str | None]:
    return {key: channel["address"] for key, channel in doc["channels"].items()}


def operation_of(doc: dict[str, Any], action: str, message: str) -> dict[str, Any]:
    ref = f"/messages/{message}"
    found = [
        op
        for op in doc["operations"].values()
        if op["action"] == action and any(m["$ref"].endswith(ref) for m in op["messages"])
    ]
    assert len(found) == 1, f"{action} {message}: {len(found)} operations"
    return found[0]


def channel_of(doc: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    key = operation["channel"]["$ref"].rpartition("/")[2]
    channel: dict[str, Any] = doc["channels"][key]
    return channel


def test_a_channel_per_intent_with_the_scope_as_a_parameter(catalog: SchemaCatalog) -> None:
    doc = document(catalog, Oven())
    assert set(addresses(doc).values()) == {
        "app/oven/{scope}/commands",
        "app/oven/{scope}/events",
        "app/oven/metadata",
        None,  # the responses: wherever the request's Response Topic says
    }
    commands = doc["channels"]["app_oven_commands"]
    assert "3 topic levels" in commands["parameters"]["scope"]["description"]


def test_intent_overrides_choose_the_channels(catalog: SchemaCatalog) -> None:
    doc = document(catalog, OvenOnData())
    receive = operation_of(doc, "receive", "HeatRequest")
    assert channel_of(doc, receive)["address"] == "app/oven/{scope}/data"
    assert "app/oven/{scope}/commands" not in addresses(doc).values()


def test_a_receive_operation_per_handled_type(catalog: SchemaCatalog) -> None:
    doc = document(catalog, Oven())
    receive = operation_of(doc, "receive", "HeatRequest")
    assert channel_of(doc, receive)["address"] == "app/oven/{scope}/commands"
    assert doc["components"]["messages"]["HeatRequest"]["name"] == "Heat"
    receives = [op for op in doc["operations"].values() if op["action"] == "receive"]
    assert len(receives) == 1


def test_a_send_operation_per_emitted_type_declared_on_class_and_handler(
    catalog: SchemaCatalog,
) -> None:
    doc = document(catalog, Oven())
    for message in ("Heated", "Cooled"):
        send = operation_of(doc, "send", message)
        assert channel_of(doc, send)["address"] == "app/oven/{scope}/events"


def test_the_reply_goes_to_the_response_topic_with_the_response_or_an_error(
    catalog: SchemaCatalog,
) -> None:
    doc = document(catalog, Oven())
    reply = operation_of(doc, "receive", "HeatRequest")["reply"]
    replies = doc["channels"][reply["channel"]["$ref"].rpartition("/")[2]]
    assert replies["address"] is None
    assert "Response Topic" in replies["description"]
    assert [m["$ref"].rpartition("/")[2] for m in reply["messages"]] == [
        "HeatResponse",
        "ErrorEvent",
    ]
    binding = doc["components"]["messages"]["HeatRequest"]["bindings"]["mqtt"]
    assert {"responseTopic", "correlationData"} <= set(binding)
    assert "responseTopic" not in doc["components"]["messages"]["Heated"]["bindings"]["mqtt"]


def test_payloads_are_the_json_schemas_with_references_into_the_components(
    catalog: SchemaCatalog,
) -> None:
    doc = document(catalog, Oven())
    messages = doc["components"]["messages"]
    assert messages["HeatRequest"]["payload"] == {"$ref": "#/components/schemas/oven.Heat"}
    schemas = doc["components"]["schemas"]
    setpoint = schemas["oven.Heat"]["properties"]["Setpoint"]
    assert setpoint == {"$ref": "#/components/schemas/oven.Celsius"}
    assert schemas["oven.Celsius"] == {"type": "number", "minimum": -273.15, "maximum": 400}
    assert "$schema" not in schemas["oven"] and "$id" not in schemas["oven"]
    assert catalog.unresolved == []


def test_a_model_without_a_schema_file_gets_a_payload_from_its_fields(
    catalog: SchemaCatalog,
) -> None:
    doc = document(catalog, Oven())
    payload = doc["components"]["messages"]["Cooled"]["payload"]
    assert payload["properties"] == {
        "Temperature": {"type": "number"},
        "Reason": {"type": "string"},
    }
    assert payload["required"] == ["Temperature"]
    assert "names no data schema" in payload["description"]


def test_an_unknown_schema_url_is_reported_and_derived(tmp_path: Path) -> None:
    empty = SchemaCatalog([tmp_path])
    doc = document(empty, Oven())
    assert f"{SCHEMA_ID}#/$defs/Heat" in empty.unresolved
    payload = doc["components"]["messages"]["HeatRequest"]["payload"]
    assert payload["properties"] == {"Setpoint": {"type": "number"}}  # the hidden field is not


def test_cloudevents_attributes_are_the_headers(catalog: SchemaCatalog) -> None:
    doc = document(catalog, Oven())
    headers = doc["components"]["messages"]["HeatRequest"]["headers"]
    assert headers["required"] == ["specversion", "id", "source", "type"]
    properties = headers["properties"]
    assert properties["type"] == {"type": "string", "const": Heat.__ce_type__}
    assert properties["dataschema"]["const"] == Heat.__ce_dataschema__
    assert {"subject", "time", "correlationid", "traceparent"} <= set(properties)


def test_hidden_fields_are_headers_in_both_forms(catalog: SchemaCatalog) -> None:
    doc = document(catalog, Oven())
    properties = doc["components"]["messages"]["HeatRequest"]["headers"]["properties"]
    extension = Heat.hidden_fields()["_batch_key"]
    assert extension in properties
    assert extension in properties["custommetadata"]["description"]
    assert "custommetadata" not in doc["components"]["messages"]["Heated"]["headers"]["properties"]


def test_errors_and_the_retained_metadata_are_sent(catalog: SchemaCatalog) -> None:
    doc = document(catalog, Oven())
    error = operation_of(doc, "send", "ErrorEvent")
    assert channel_of(doc, error)["address"] == "app/oven/{scope}/events"
    error_headers = doc["components"]["messages"]["ErrorEvent"]["headers"]
    assert "mdcserrorkind" in error_headers["required"]
    metadata = operation_of(doc, "send", "ProcessorMetadata")
    assert channel_of(doc, metadata)["address"] == "app/oven/metadata"
    assert metadata["bindings"]["mqtt"]["retain"] is True


def test_a_southbound_processor_has_scoped_and_retained_metadata_channels(
    catalog: SchemaCatalog,
) -> None:
    doc = document(catalog, Device())
    assert "app/devices/{scope}/metadata" in addresses(doc).values()
    retained = operation_of(doc, "send", "ProcessorMetadata")
    assert channel_of(doc, retained)["address"] == "app/devices/metadata"


def test_the_broker_is_the_server(catalog: SchemaCatalog) -> None:
    doc = document(catalog, Oven())
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["broker"] == {
        "host": "broker.example:8883",
        "protocol": "secure-mqtt",
        "protocolVersion": "5",
        "description": doc["servers"]["broker"]["description"],
    }


def test_the_job_processor_declares_the_sfc_step_progress_it_emits() -> None:
    from microdcs.jobs.processor import JobManagementProcessor
    from microdcs_models.machinery_jobs import ISA95JobOrderStatusEventType
    from microdcs_models.sfc_step_event import SfcProgressEvent

    assert JobManagementProcessor.emitted_models() == (
        ISA95JobOrderStatusEventType,
        SfcProgressEvent,
    )
