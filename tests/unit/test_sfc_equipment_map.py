"""The equipment map: which port an action's command and cancel go through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from microdcs.equipment.contract import Cancel, Command, EquipmentMessage
from microdcs.sfc.engine.equipment_map import EquipmentMap, UnknownEquipmentError
from microdcs_models.machinery_jobs import EquipmentBinding, EquipmentTransport

MQTT, RPC = EquipmentTransport.MQTT, EquipmentTransport.RPC


class Port:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[str | None, Any]] = []
        self.receiver: Any = None

    async def send_command(self, subject: str | None, command: Command) -> None:
        self.sent.append((subject, command))

    async def send_cancel(self, subject: str | None, cancel: Cancel) -> None:
        self.sent.append((subject, cancel))

    def set_receiver(self, receiver: Any) -> None:
        self.receiver = receiver


class Bindings:
    def __init__(self, by_scope: Mapping[str, Mapping[str, EquipmentBinding]]) -> None:
        self.by_scope = by_scope
        self.reads = 0

    async def equipment_bindings(self, scope: str) -> Mapping[str, EquipmentBinding]:
        self.reads += 1
        return self.by_scope.get(scope, {})


def command(equipment: str | None) -> Command:
    return Command("com.example.bake.v1", "J1/Bake/bake/1", {}, None, equipment)


def setup(bindings: Mapping[str, Mapping[str, EquipmentBinding]] | None = None) -> Any:
    default, ovens, coded = Port("default"), Port("ovens"), Port("coded")
    sidecars: dict[str, Port] = {}

    def sidecar(name: str) -> Port:
        return sidecars.setdefault(name, Port(f"sidecar:{name}"))

    source = Bindings(bindings or {})
    ports = EquipmentMap(default, by_prefix={"app/ovens": ovens}, by_id={"oven-7": coded},
                         sidecar=sidecar, bindings=source)  # fmt: skip
    return ports, default, ovens, coded, sidecars, source


async def test_an_action_without_equipment_goes_to_the_default_port() -> None:
    ports, default, *_ = setup()
    await ports.send_command("line1", command(None))
    assert [c.correlation_id for _, c in default.sent] == ["J1/Bake/bake/1"]


async def test_the_scope_binding_names_the_processor_of_an_mqtt_prefix() -> None:
    binding = EquipmentBinding(transport=MQTT, topic_prefix="app/ovens")
    ports, default, ovens, *_ = setup({"line1": {"oven-1": binding}})
    await ports.send_command("line1", command("oven-1"))
    await ports.send_cancel("line1", Cancel("J1/Bake/bake/1", "stop", "oven-1"))
    assert len(ovens.sent) == 2 and not default.sent


async def test_an_rpc_binding_goes_to_the_named_sidecar_with_the_receiver() -> None:
    binding = EquipmentBinding(transport=RPC, sidecar="press-adapter")
    ports, _, _, _, sidecars, _ = setup({"line1": {"press-2": binding}})

    async def receiver(subject: str | None, message: EquipmentMessage) -> None: ...

    ports.set_receiver(receiver)
    await ports.send_command("line1", command("press-2"))
    assert len(sidecars["press-adapter"].sent) == 1
    assert sidecars["press-adapter"].receiver is receiver


async def test_a_registered_port_serves_an_id_without_a_binding_in_the_scope() -> None:
    ports, _, _, coded, *_ = setup()
    await ports.send_command("line1", command("oven-7"))
    assert len(coded.sent) == 1


async def test_the_station_binding_wins_over_a_registered_port() -> None:
    binding = EquipmentBinding(transport=MQTT, topic_prefix="app/ovens")
    ports, _, ovens, coded, *_ = setup({"line1": {"oven-7": binding}})
    await ports.send_command("line1", command("oven-7"))
    assert len(ovens.sent) == 1 and not coded.sent


async def test_unknown_equipment_fails_the_action_through_the_receiver() -> None:
    ports, default, *_ = setup()
    failures: list[EquipmentMessage] = []

    async def receiver(subject: str | None, message: EquipmentMessage) -> None:
        failures.append(message)

    ports.set_receiver(receiver)
    await ports.send_command("line1", command("oven-9"))
    assert not default.sent
    [failure] = failures
    assert failure.failed and failure.correlation_id == "J1/Bake/bake/1"
    assert "equipment 'oven-9' has no binding" in failure.reason


async def test_a_prefix_no_processor_is_bound_under_is_unknown_equipment() -> None:
    binding = EquipmentBinding(transport=MQTT, topic_prefix="app/nowhere")
    ports, *_ = setup({"line1": {"oven-1": binding}})
    with pytest.raises(UnknownEquipmentError, match="app/nowhere"):
        await ports.port("line1", "oven-1")


async def test_bindings_are_read_once_per_ttl_and_scope() -> None:
    now = [0.0]
    source = Bindings({})
    ports = EquipmentMap(Port("d"), by_id={"oven-7": Port("c")}, bindings=source, ttl=1.0,
                         clock=lambda: now[0])  # fmt: skip
    for _ in range(3):
        await ports.port("line1", "oven-7")
    assert source.reads == 1
    now[0] = 1.5
    await ports.port("line1", "oven-7")
    assert source.reads == 2
    await ports.port("line1", None)  # no equipment: no read at all
    assert source.reads == 2


def test_every_port_known_up_front_gets_the_receiver_once() -> None:
    default = Port("d")
    ports = EquipmentMap(default, by_prefix={"app/equipment": default})

    def receiver(subject: str | None, message: EquipmentMessage) -> Any: ...

    ports.set_receiver(receiver)
    assert ports.ports == [default] and default.receiver is receiver


def test_the_stored_effects_keep_the_equipment_of_a_dispatch_and_a_cancel() -> None:
    from microdcs.sfc.engine.plan import decode_effects, encode_effects
    from microdcs.sfc.events import CancelAction, DispatchAction
    from microdcs_models.sfc_recipe import SfcInteraction, SfcQualifier

    push = SfcInteraction.PUSH_COMMAND
    dispatch = DispatchAction("J1", "Bake", "bake", SfcQualifier.N, push, "com.example.bake.v1",
                              "J1/Bake/bake/1", {}, None, "oven-1")  # fmt: skip
    cancel = CancelAction("J1/Bake/bake/1", "Bake", "bake", "stop", "oven-1")
    assert decode_effects(encode_effects([dispatch, cancel]), "J1") == [dispatch, cancel]
