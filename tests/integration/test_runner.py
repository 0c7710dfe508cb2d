"""The runner wires every transport: the greeting answers over MQTT and MessagePack-RPC."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import msgpack

from microdcs.app.config import AppConfig, RpcConfig
from microdcs.examples.greeting import GREETING_TYPE
from tests.conftest import running


async def test_runtime_with_rpc_enabled_answers_publish_over_raw_msgpack(
    config: AppConfig,
) -> None:
    config = replace(config, rpc=RpcConfig(enabled=True, port=0))
    async with running(config) as runtime:
        assert runtime.rpc is not None
        async with asyncio.timeout(5):
            while not runtime.rpc.ready:
                await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", runtime.rpc.port)
        event = {
            "specversion": "1.0",
            "id": "rpc-1",
            "source": "sidecar/test",
            "type": GREETING_TYPE,
            "datacontenttype": "application/json",
            "data": {"name": "Sidecar"},
        }
        writer.write(msgpack.packb([0, 7, "publish", [event]]))
        unpacker = msgpack.Unpacker(raw=False)
        async with asyncio.timeout(5):
            while True:
                unpacker.feed(await reader.read(65536))
                frames = list(unpacker)
                if frames:
                    break
        writer.close()
        kind, msgid, error, result = frames[0]
        assert (kind, msgid, error) == (1, 7, None)
        assert result[0]["data"] == {"greeting": "Hello, Sidecar!", "name": "Sidecar"}
        assert result[0]["causationid"] == "rpc-1"


async def test_runtime_without_rpc_has_no_rpc_handler(config: AppConfig) -> None:
    async with running(config) as runtime:
        assert runtime.rpc is None
        assert [handler.name for handler in runtime.app.handlers] == ["mqtt"]


async def test_a_default_replica_binds_no_greeting_and_serves_a_factory(config: AppConfig) -> None:
    from microdcs.app.binder import Binder
    from microdcs.examples.greeting import GreetingProcessor

    bound: list[str] = []

    def factory(binder: Binder) -> None:
        bound.append(binder.source)
        binder.bind(GreetingProcessor(source=binder.source), prefix="test/factory", rpc=False)

    async with running(replace(config, greeting_enabled=False), [factory]) as runtime:
        prefixes = {binding.layout.prefix for binding in runtime.mqtt.bindings}
        assert config.greeting_prefix not in prefixes
        assert {"test/factory", config.jobs_prefix, config.equipment_prefix} <= prefixes
        assert bound == [config.resolved_source]
