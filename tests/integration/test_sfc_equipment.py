"""Pluggable equipment: a recipe's actions name their equipment, the station configuration
maps each to a processor binding (an MQTT prefix or an RPC sidecar), against Mosquitto and
Redis with a real MessagePack-RPC connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, ClassVar

import orjson

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.core.cloudevent import CloudEvent
from microdcs.equipment.contract import (
    Cancel,
    Command,
    cancel_event,
    command_event,
    read_message,
)
from microdcs.processing.capabilities import Capabilities
from microdcs.processing.processor import CloudEventProcessor, MessageContext
from microdcs.processing.routing import Direction, Intent
from microdcs.transports.msgpack_rpc import MessagePackRpcClient
from tests.conftest import running
from tests.integration.sfc_helpers import action, configure_and_start, states_until
from tests.integration.test_jobs_helpers import SCOPE, Station, retained_until
from tests.mesclient import MesClient, ce_properties

OVENS = "app/ovens"
BAKE = "com.example.oven.bake.v1"
PRESS = "com.example.press.close.v1"
Receiver = Any


class OvenProcessor(CloudEventProcessor):
    """A custom southbound processor implementing the equipment port over MQTT: commands
    out through its own binding's ``commands`` topic, every answer to the engine."""

    direction: ClassVar[Direction] = Direction.SOUTHBOUND

    def __init__(self) -> None:
        super().__init__(source="oven-processor")
        self.receiver: Receiver | None = None
        self.commands: list[Command] = []
        self.answers = 0

    def set_receiver(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def handles_type(self, event_type: str) -> bool:
        return True

    def capabilities(self) -> Capabilities:
        return Capabilities(handles_any_type=True, emits_any_type=True)

    async def dispatch(self, event: CloudEvent, context: MessageContext) -> list[CloudEvent]:
        self.answers += 1
        assert self.receiver is not None
        await self.receiver(event.subject, read_message(event))
        return []

    async def send_command(self, subject: str | None, command: Command) -> None:
        self.commands.append(command)
        event = command_event(source=self.source, subject=subject, type_id=command.type_id,
                              correlation_id=command.correlation_id,
                              parameters=command.parameters, timeout_seconds=None)  # fmt: skip
        await self.emit(event, Intent.COMMANDS)

    async def send_cancel(self, subject: str | None, cancel: Cancel) -> None:
        event = cancel_event(
            source=self.source,
            subject=subject,
            correlation_id=cancel.correlation_id,
            reason=cancel.reason,
        )
        await self.emit(event, Intent.COMMANDS)


def two_equipment_recipe() -> dict[str, Any]:
    return {
        "Steps": [{"Name": "Bake", "Initial": True}, {"Name": "Press"}],
        "Actions": [
            action("bake", "Bake", BAKE, Equipment="oven-1", Parameters={"Celsius": 180}),
            action("press", "Press", PRESS, Equipment="press-2", Parameters={"Bar": 40}),
        ],
        "Transitions": [{"Source": "Bake", "Target": "Press", "Condition": "result.baked"}],
    }


@contextlib.asynccontextmanager
async def oven(port: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Plays oven-1 on MQTT under ``app/ovens``: answers each command with ``baked``."""
    seen: list[dict[str, Any]] = []
    async with MesClient(port) as client:
        commands = await client.watch(f"{OVENS}/{SCOPE}/commands")

        async def serve() -> None:
            while True:
                message = await commands.get()
                attributes = message.attributes
                seen.append({"type": attributes["type"], "data": message.json()})
                correlation = {"correlationid": attributes["correlationid"]}
                answer = f"{attributes['type']}.done"
                props = ce_properties(answer, subject=SCOPE, extra=correlation)
                payload = orjson.dumps({"baked": True, "Celsius": message.json()["Celsius"]})
                await client.publish(f"{OVENS}/{SCOPE}/events", payload, props)

        task = asyncio.create_task(serve())
        try:
            yield seen
        finally:
            task.cancel()


@contextlib.asynccontextmanager
async def press_sidecar(port: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Plays press-2 as a sidecar over MessagePack-RPC: each ``command`` notification is
    answered through the ``equipment`` method with the command's correlation id."""
    seen: list[dict[str, Any]] = []
    async with MessagePackRpcClient("127.0.0.1", port) as rpc:
        await rpc.call("heartbeat", 0)  # connected: the runtime may push commands now

        async def serve() -> None:
            async for method, params in rpc.notifications():
                if method != "command":
                    continue
                command = params[0]
                seen.append(command)
                answer = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "press-2",
                          "type": f"{command['type']}.done", "subject": command["subject"],
                          "correlationid": command["correlationid"],
                          "datacontenttype": "application/json",
                          "data": {"closed": True, "Bar": command["data"]["Bar"]}}  # fmt: skip
                assert await rpc.call("equipment", answer) is True

        task = asyncio.create_task(serve())
        try:
            yield seen
        finally:
            task.cancel()


def rpc_on(config: AppConfig) -> AppConfig:
    return replace(config, rpc=replace(config.rpc, enabled=True, host="127.0.0.1", port=0))


async def test_a_recipe_drives_a_custom_mqtt_processor_and_an_rpc_sidecar(
    config: AppConfig,
) -> None:
    config = rpc_on(config)
    ovens = OvenProcessor()

    def factory(binder: Binder) -> None:
        binder.equipment_processor(ovens, prefix=OVENS)

    async with running(config, [factory]) as runtime, MesClient(config.mqtt.port) as mes:
        assert runtime.rpc is not None
        await runtime.rpc.wait_ready()
        async with oven(config.mqtt.port) as baked, press_sidecar(runtime.rpc.port) as pressed:
            station = Station(mes, config.jobs_prefix, runtime)
            await station.configure("equipment", {"ID": "oven-1", "Binding": {
                "Transport": "mqtt", "TopicPrefix": OVENS}})  # fmt: skip
            await station.configure("equipment", {"ID": "press-2", "Binding": {
                "Transport": "rpc", "Sidecar": "default"}})  # fmt: skip
            events = await station.watch("events")
            result = await station.watch("result/J1")
            await configure_and_start(station, "J1", two_equipment_recipe())
            await states_until(events, "J1", 5)
            final = await retained_until(
                result, lambda m: m.json()["JobState"][0]["StateNumber"] == 5
            )
    data = {p["ID"]: p["Value"] for p in final.json()["JobResponseData"]}
    assert data["bake"] == {"baked": True, "Celsius": 180}
    assert data["press"] == {"closed": True, "Bar": 40}
    assert [c.type_id for c in ovens.commands] == [BAKE] and ovens.answers == 1
    assert [c["type"] for c in baked] == [BAKE]
    assert [c["type"] for c in pressed] == [PRESS]
    assert pressed[0]["correlationid"] == "J1/Press/press/1"
    assert pressed[0]["subject"] == SCOPE


async def test_an_action_naming_unbound_equipment_aborts_the_job_with_the_reason(
    config: AppConfig,
) -> None:
    recipe = {
        "Steps": [{"Name": "Bake", "Initial": True}],
        "Actions": [action("bake", "Bake", BAKE, Equipment="oven-9")],
        "Transitions": [],
    }
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        result = await station.watch("result/J2")
        await configure_and_start(station, "J2", recipe)
        await states_until(events, "J2", 6)
        final = await retained_until(result, lambda m: m.json()["JobState"][0]["StateNumber"] == 6)
    assert "equipment 'oven-9' has no binding" in orjson.dumps(final.json()).decode()


async def test_an_equipment_binding_needs_what_its_transport_names(config: AppConfig) -> None:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        station = Station(mes, config.jobs_prefix, runtime)
        before = runtime.mqtt.stats.failed.get("invalid_request", 0)
        await station.configure("equipment", {"ID": "oven-1", "Binding": {"Transport": "rpc"}})
        assert runtime.mqtt.stats.failed.get("invalid_request", 0) == before + 1
