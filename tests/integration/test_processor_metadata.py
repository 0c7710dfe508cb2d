"""Every bound processor's capability metadata, retained on ``{prefix}/metadata``
(real Mosquitto and Redis): published with its types, removed only when the last replica
serving the prefix leaves for good."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.devstack import LocalMosquitto, LocalRedis
from microdcs.equipment.processor import EquipmentProcessor
from microdcs.models import Model
from microdcs.processing.metadata import METADATA_TYPE
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs_models.machinery_jobs import ISA95JobOrderStatusEventType, StoreRequest
from microdcs_models.sfc_step_event import SfcProgressEvent
from tests.conftest import make_config, running
from tests.mesclient import MesClient, Received

SCHEMA = "https://example.com/schemas/oven.schema.json"
HEAT_TYPE = "com.example.test.oven.heat.v1"
ALARM_TYPE = "com.example.test.oven.alarm.v1"


@dataclass(kw_only=True)
class HeatDone(Model):
    __ce_type__: ClassVar[str] = HEAT_TYPE
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA}#/$defs/HeatDone"
    celsius: float


@dataclass(kw_only=True)
class Heat(Model):
    __ce_type__: ClassVar[str] = HEAT_TYPE
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA}#/$defs/Heat"
    __response_type__ = HeatDone
    celsius: float


@dataclass(kw_only=True)
class OvenAlarm(Model):
    __ce_type__: ClassVar[str] = ALARM_TYPE
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA}#/$defs/OvenAlarm"
    text: str


class OvenProcessor(CloudEventProcessor):
    """A custom northbound processor: one method, one event it raises on its own."""

    default_prefix = "test/oven"
    emitted = (OvenAlarm,)

    @handles(Heat)
    async def heat(self, message: Heat, context: MessageContext) -> Model:
        return HeatDone(celsius=message.celsius)


def _oven_prefix(config: AppConfig) -> str:
    return config.greeting_prefix.replace("greeting", "oven")


def _bind_oven(prefix: str) -> Any:
    def bind(binder: Binder) -> None:
        binder.bind(OvenProcessor(source=binder.source), prefix=prefix)

    return bind


async def _retained(port: int, topic: str, *, wait: float = 0.5) -> Received | None:
    """What the broker retains on ``topic`` now, read by a fresh subscriber."""
    async with MesClient(port) as reader:
        queue = await reader.watch(topic)
        try:
            async with asyncio.timeout(wait):
                while True:
                    message = await queue.get()
                    if message.retain:
                        return message
        except TimeoutError:
            return None


async def _eventually_retained(port: int, topic: str) -> Received:
    async with asyncio.timeout(10):
        while True:
            found = await _retained(port, topic)
            if found is not None and found.payload:
                return found


async def test_a_custom_processor_publishes_its_types_retained(config: AppConfig) -> None:
    prefix = _oven_prefix(config)
    async with running(config, [_bind_oven(prefix)]):
        message = await _eventually_retained(config.mqtt.port, f"{prefix}/metadata")
    assert message.attributes["type"] == METADATA_TYPE
    assert message.attributes["source"] == config.resolved_source
    assert message.attributes["dataschema"].endswith(
        "processor_metadata.schema.json#/$defs/ProcessorMetadata"
    )
    assert message.content_type == "application/json"
    data = message.json()
    assert data["processor"] == "OvenProcessor"
    assert data["direction"] == "northbound"
    assert data["prefix"] == prefix
    assert data["handles"] == [
        {
            "type": HEAT_TYPE,
            "dataschema": f"{SCHEMA}#/$defs/Heat",
            "response_type": HEAT_TYPE,
            "response_dataschema": f"{SCHEMA}#/$defs/HeatDone",
        }
    ]
    assert data["emits"] == [{"type": ALARM_TYPE, "dataschema": f"{SCHEMA}#/$defs/OvenAlarm"}]


async def test_job_management_metadata_is_a_processor_metadata_event(config: AppConfig) -> None:
    async with running(config):
        message = await _eventually_retained(config.mqtt.port, f"{config.jobs_prefix}/metadata")
        equipment = await _eventually_retained(
            config.mqtt.port, f"{config.equipment_prefix}/metadata"
        )
    assert message.attributes["type"] == METADATA_TYPE
    data = message.json()
    handled = {entry["type"]: entry for entry in data["handles"]}
    store = handled[StoreRequest.__ce_type__]
    assert store["dataschema"] == StoreRequest.__ce_dataschema__
    assert store["response_dataschema"].endswith("#/$defs/StoreResponse")
    assert [e["type"] for e in data["emits"]] == [
        ISA95JobOrderStatusEventType.__ce_type__,
        SfcProgressEvent.__ce_type__,
    ]
    described = equipment.json()
    assert described["direction"] == "southbound"
    assert described["handles_any_type"] is True
    assert described["handles"] == []


async def test_the_last_replica_leaving_for_good_removes_the_metadata(config: AppConfig) -> None:
    prefix = _oven_prefix(config)
    topic = f"{prefix}/metadata"
    second = replace(config, instance_id=f"{config.instance_id}-b")
    async with running(config, [_bind_oven(prefix)]):
        async with running(second, [_bind_oven(prefix)]):
            await _eventually_retained(config.mqtt.port, topic)
        # One replica left; the other still serves the prefix: the description stays.
        assert await _retained(config.mqtt.port, topic) is not None
    assert await _retained(config.mqtt.port, topic, wait=1.0) is None


async def test_a_replica_that_keeps_its_session_keeps_the_metadata(config: AppConfig) -> None:
    prefix = _oven_prefix(config)
    topic = f"{prefix}/metadata"
    staying = replace(config, mqtt=replace(config.mqtt, end_session_on_shutdown=False))
    async with running(staying, [_bind_oven(prefix)]):
        await _eventually_retained(config.mqtt.port, topic)
    assert await _retained(config.mqtt.port, topic, wait=1.0) is not None


async def test_the_equipment_processor_never_takes_the_metadata_as_input(
    config: AppConfig,
) -> None:
    second = replace(config, instance_id=f"{config.instance_id}-b")
    topic = f"{config.equipment_prefix}/metadata"
    async with running(config) as a, running(second) as b:
        await _eventually_retained(config.mqtt.port, topic)
        await asyncio.sleep(0.5)  # each replica's publish reached the shared group
        for runtime in (a, b):
            (equipment,) = [
                binding.processor
                for binding in runtime.mqtt.bindings
                if isinstance(binding.processor, EquipmentProcessor)
            ]
            assert equipment.received == 0
            assert runtime.mqtt.stats.processed == 0


async def test_a_broker_that_lost_its_retained_messages_gets_the_metadata_again(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    with LocalMosquitto(tmp_path / "mosquitto") as broker:
        config = make_config(broker.port, redis_server)
        prefix = _oven_prefix(config)
        topic = f"{prefix}/metadata"
        async with running(config, [_bind_oven(prefix)]) as runtime:
            await _eventually_retained(broker.port, topic)
            broker.kill()
            for stored in (broker.workdir / "data").glob("*"):
                stored.unlink()
            broker.start()
            async with asyncio.timeout(10):
                await runtime.mqtt.connected.wait()
            message = await _eventually_retained(broker.port, topic)
    assert message.json()["prefix"] == prefix
