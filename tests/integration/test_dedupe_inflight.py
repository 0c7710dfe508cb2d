"""In-flight duplicates against Mosquitto and Redis: two copies of one request (same
``source`` + ``id``) that arrive at the same time give one effect and the same response
twice, on one replica or two; a dead holder's claim delays the copy, never loses it; a
processing that fails without a response to record releases its claim."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import msgpack

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig, RpcConfig, to_environment
from microdcs.core.errors import StorageUnavailableError
from microdcs.examples.greeting import GREETING_TYPE
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from tests.conftest import running
from tests.integration.slow_processor import SLOW_TYPE
from tests.integration.test_jobs_helpers import JC, two_replicas
from tests.integration.test_scenario17_sidecar import RawRpc
from tests.mesclient import MesClient, Received

REPO = Path(__file__).resolve().parents[2]
FLAKY_TYPE = "com.example.test.flaky.v1"


def _rpc_event(method: str, data: Any, event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "sidecar/test",
        "type": f"{JC}.{method}.v2",
        "subject": "woodworking",
        "datacontenttype": "application/json",
        "data": data,
    }


def _answer(reply: Received) -> tuple[bytes, dict[str, str]]:
    """What an MES compares of two responses: the payload and every CloudEvent attribute."""
    return reply.payload, reply.attributes


async def test_two_copies_of_one_start_over_rpc_give_one_effect_and_the_same_response(
    config: AppConfig,
) -> None:
    config = replace(config, rpc=RpcConfig(enabled=True, port=0))
    async with running(config) as runtime:
        server = runtime.rpc
        assert server is not None
        async with asyncio.timeout(5):
            while not server.ready:
                await asyncio.sleep(0.02)
        rpc = RawRpc(*await asyncio.open_connection("127.0.0.1", server.port))
        try:
            store = _rpc_event("Store", {"JobOrder": {"JobOrderID": "J1"}, "Comment": []}, "s1")
            rpc.send([0, 1, "publish", [store]])
            _, _, error, [stored] = await rpc.next_frame(1)
            assert error is None and stored["data"]["ReturnStatus"] == 1
            start = _rpc_event("Start", {"JobOrderID": "J1", "Comment": []}, "start-1")
            # Both copies in one write: they arrive together, as a retrying sidecar's do.
            rpc.writer.write(
                msgpack.packb([0, 2, "publish", [start]])
                + msgpack.packb([0, 3, "publish", [start]])
            )
            replies: dict[int, Any] = {}
            for _ in range(2):
                _, msgid, error, responses = await rpc.next_frame(1)
                assert error is None
                replies[msgid] = responses
        finally:
            rpc.writer.close()
    assert replies[2] == replies[3]  # the same response, id and time included
    assert [r["data"]["ReturnStatus"] for r in replies[2]] == [1]
    assert server.stats.duplicates == 1


async def test_two_copies_of_one_start_to_two_replicas_give_one_effect_and_the_same_response(
    config: AppConfig,
) -> None:
    async with two_replicas(config) as (first, second, station):
        assert await station.store("J1") == 1
        before = [first.mqtt.stats.received, second.mqtt.stats.received]
        copies = await asyncio.gather(
            *(
                station.call_raw("Start", {"JobOrderID": "J1"}, event_id="start-J1")
                for _ in range(2)
            )
        )
        received = [first.mqtt.stats.received - before[0], second.mqtt.stats.received - before[1]]
        duplicates = first.mqtt.stats.duplicates + second.mqtt.stats.duplicates
    assert received == [1, 1], f"each replica must have had a copy: {received}"
    assert _answer(copies[0]) == _answer(copies[1])
    assert copies[0].json()["ReturnStatus"] == 1
    assert duplicates == 1


def _slow_replica(config: AppConfig, tmp: Path, prefix: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(to_environment(config))
    env.update(TEST_SLOW_PREFIX=prefix, PYTHONPATH=str(REPO))
    log = (tmp / f"{config.instance_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "microdcs.app.cli", "run", "--processor",
         "tests.integration.slow_processor:bind"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip


async def _wait_connected(mes: MesClient, config: AppConfig) -> None:
    """Until the replica answers a greeting (then it has subscribed its topics)."""
    for _ in range(100):
        try:
            await mes.request(
                f"{config.greeting_prefix}/commands", GREETING_TYPE, {"name": "p"}, timeout=0.5
            )
            return
        except TimeoutError:
            continue
    raise AssertionError("replica did not come up")


async def _held(config: AppConfig, event_id: str) -> bytes | None:
    """What the dedupe registry holds for the MES's event ``event_id`` (a claim, a record)."""
    async with RedisStore(config.redis) as store:
        key = Deduplicator(store, 60).key("mes/test", event_id)
        held: bytes | None = await store.execute("GET", key)
        return held


async def test_a_request_is_processed_after_the_claim_of_its_killed_holder_expires(
    config: AppConfig, tmp_path: Path
) -> None:
    claim_seconds = 8.0
    config = replace(config, redis=replace(config.redis, dedupe_claim_seconds=claim_seconds))
    prefix = config.greeting_prefix.rsplit("/", 1)[0] + "/slow"
    topic = f"{prefix}/commands"
    holder = _slow_replica(config, tmp_path, prefix)
    try:
        async with MesClient(config.mqtt.port) as mes:
            await _wait_connected(mes, config)
            request = asyncio.ensure_future(
                mes.request(topic, SLOW_TYPE, {"n": 1, "seconds": 1}, event_id="w1", timeout=30)
            )
            async with asyncio.timeout(20):  # the holder has claimed the event
                while not await _held(config, "w1"):
                    await asyncio.sleep(0.02)
            claimed = time.monotonic()
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)

            def bind(binder: Binder) -> None:
                from tests.integration.slow_processor import SlowProcessor

                binder.bind(SlowProcessor(source=binder.source), prefix=prefix, rpc=False)

            # Same instance id: the broker redelivers the request the holder left unacked.
            async with running(config, [bind]) as survivor:
                reply = await request
                answered = time.monotonic()
                stats = survivor.mqtt.stats
    finally:
        holder.kill()
    assert reply.json() == {"n": 1, "pid": os.getpid()}  # processed by the survivor
    assert answered - claimed >= claim_seconds, "the redelivery must wait out the claim"
    # The slow request is processed once, here. The readiness greeting may come again
    # too: the holder acknowledges it only once its reply's PUBACK is back (and then up
    # to 2 ms later), and the MES already sends the slow request on that reply, so the
    # kill can land first. Then the survivor must replay it, not process it again.
    assert stats.processed == 1, stats
    assert stats.received - stats.duplicates == 1, stats


@dataclass(kw_only=True)
class Flaky(Model):
    __ce_type__: ClassVar[str] = FLAKY_TYPE
    n: int


class FlakyProcessor(CloudEventProcessor):
    """Its own storage fails on the first call (slowly); counts calls running at once."""

    def __init__(self, source: str) -> None:
        super().__init__(source=source)
        self.calls = 0
        self.running = 0
        self.most_at_once = 0

    @handles(Flaky)
    async def handle(self, message: Flaky, context: MessageContext) -> Model:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.2)
            if self.calls == 1:
                raise StorageUnavailableError("the processor's storage is down")
            return Flaky(n=message.n + 1)
        finally:
            self.running -= 1


async def test_a_processing_failing_with_storage_unavailable_releases_its_claim(
    config: AppConfig,
) -> None:
    # A long claim: a copy processed at once proves the claim was released, not expired.
    config = replace(
        config,
        storage_retry_seconds=0.3,
        redis=replace(config.redis, dedupe_claim_seconds=30.0),
    )
    prefix = config.greeting_prefix.rsplit("/", 1)[0] + "/flaky"
    processor = FlakyProcessor(source=config.instance_id)

    def bind(binder: Binder) -> None:
        binder.bind(processor, prefix=prefix, rpc=False)

    async with running(config, [bind]), MesClient(config.mqtt.port) as mes:
        topic = f"{prefix}/commands"
        started = time.monotonic()
        replies = await asyncio.gather(
            mes.request(topic, FLAKY_TYPE, {"n": 1}, event_id="f1", timeout=10),
            mes.request(topic, FLAKY_TYPE, {"n": 1}, event_id="f1", timeout=10),
        )
        elapsed = time.monotonic() - started
        held = await _held(config, "f1")
    # The copy that claimed first failed; the other waited, then took over.
    failed, retried = sorted(replies, key=lambda r: "mdcserrorkind" not in r.attributes)
    assert failed.attributes.get("mdcserrorkind") == "storage_unavailable"
    assert retried.json() == {"n": 2}
    assert processor.calls == 2 and processor.most_at_once == 1  # one after the other
    assert elapsed < 10, "the copy must not wait for the claim to expire"
    assert held is not None and not Deduplicator.is_claim(held)  # the second one's record
    assert Deduplicator.recorded(held)[0].data == retried.payload
