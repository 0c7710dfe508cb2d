"""Acceptance scenario 17: a sidecar stores a job over MessagePack-RPC (raw msgpack client)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import msgpack

from microdcs.app.config import AppConfig, RpcConfig
from tests.conftest import running

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"


class RawRpc:
    """Speaks MessagePack-RPC with nothing but msgpack and a socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False)
        self.frames: list[Any] = []

    def send(self, frame: list[Any]) -> None:
        self.writer.write(msgpack.packb(frame))

    async def next_frame(self, kind: int, timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while True:
                for i, frame in enumerate(self.frames):
                    if frame[0] == kind:
                        return self.frames.pop(i)
                data = await self.reader.read(65536)
                assert data, "server closed the connection"
                self.unpacker.feed(data)
                self.frames.extend(self.unpacker)


def store_event(job_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"sidecar-{job_id}",
        "source": "sidecar/test",
        "type": f"{JC}.Store.v2",
        "subject": "woodworking",
        "datacontenttype": "application/json",
        "data": {"JobOrder": {"JobOrderID": job_id}, "Comment": []},
    }


async def test_sidecar_stores_a_job_and_receives_its_status_event(config: AppConfig) -> None:
    config = replace(config, rpc=RpcConfig(enabled=True, port=0))
    async with running(config) as runtime:
        assert runtime.rpc is not None
        async with asyncio.timeout(5):
            while not runtime.rpc.ready:
                await asyncio.sleep(0.02)
        rpc = RawRpc(*await asyncio.open_connection("127.0.0.1", runtime.rpc.port))
        try:
            rpc.send([0, 1, "no_such_method", []])
            _, msgid, error, result = await rpc.next_frame(1)
            assert msgid == 1 and result is None
            assert error["kind"] == "unknown_method"

            # The connection is still usable after the error.
            rpc.send([0, 2, "publish", [store_event("J17")]])
            _, msgid, error, responses = await rpc.next_frame(1)
            assert (msgid, error) == (2, None)
            assert len(responses) == 1
            assert responses[0]["type"] == f"{JC}.Store.v2"
            assert responses[0]["data"] == {"ReturnStatus": 1}
            assert responses[0]["causationid"] == "sidecar-J17"

            _, method, params = await rpc.next_frame(2)
            assert method == "cloudevent"
            event, intent = params
            assert intent == "events"
            assert event["type"] == f"{JC}.ISA95JobOrderStatusEventType.v2"
            assert event["data"]["JobOrder"]["JobOrderID"] == "J17"
            assert [s["StateNumber"] for s in event["data"]["JobState"]] == [1, 2]
        finally:
            rpc.writer.close()
