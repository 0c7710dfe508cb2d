"""The store on a real 3-primary Redis Cluster on loopback: slot routing of the pipelined
connection, multi-key commands across slots, MOVED and ASK during a resharding, a primary
frozen, killed or failed over, readiness, and a full runtime answering a Store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from microdcs.app.devstack import LocalMosquitto, LocalRedis, LocalRedisCluster, LocalRedisNode
from microdcs.core.errors import ConfigurationError, StorageUnavailableError
from microdcs.jobs.changefeed import ChangeFeed
from microdcs.sfc.engine.keys import scopes_key
from microdcs.storage.cluster import ClusterConnection
from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.storage.script import Script, raw
from microdcs.storage.slots import key_slot
from tests.conftest import make_config, redis_config, running
from tests.integration.test_jobs_helpers import SCOPE, Station, retained_until
from tests.mesclient import MesClient

KEYS = [f"key-{n}" for n in range(200)] + [f"{{tag{n}}}:x" for n in range(50)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A cluster the tests of this module do not break (the destructive ones have their own)."""
    with LocalRedisCluster(tmp_path_factory.mktemp("c1-cluster")) as server:
        yield server


@pytest.fixture
async def store(cluster: LocalRedisCluster) -> AsyncIterator[RedisStore]:
    async with RedisStore(redis_config(cluster, key_prefix=f"c1{time.monotonic_ns()}")) as s:
        yield s


def pipeline(store: RedisStore) -> ClusterConnection:
    assert isinstance(store.pipeline, ClusterConnection)
    return store.pipeline


def node_id(node: LocalRedisNode) -> str:
    return str(node.call("CLUSTER", "MYID").decode())


def address(node: LocalRedisNode) -> tuple[str, int]:
    return ("127.0.0.1", node.port)


# -- routing ---------------------------------------------------------------------------------
async def test_slots_agree_with_cluster_keyslot(cluster: LocalRedisCluster) -> None:
    node = cluster.initial_primaries[0]
    for key in [*KEYS, "ключ{äö}", "a{}b", "{{x}}"]:
        assert key_slot(key) == int(node.call("CLUSTER", "KEYSLOT", key)), key


async def test_every_primary_is_used_and_each_key_lands_on_its_slots_primary(
    cluster: LocalRedisCluster, store: RedisStore
) -> None:
    assert sorted(pipeline(store).primaries) == sorted(address(n) for n in cluster.primaries)
    await asyncio.gather(*(store.execute("SET", key, key) for key in KEYS))
    for key in KEYS[::10]:
        assert cluster.primary_of(key).call("GET", key) == key.encode()
    assert await asyncio.gather(*(store.execute("GET", key) for key in KEYS)) == [
        key.encode() for key in KEYS
    ]


async def test_mget_and_del_across_slots_are_split_and_reassembled_in_order(
    store: RedisStore,
) -> None:
    keys = KEYS[:40]
    await store.execute_many([("SET", key, f"v{n}") for n, key in enumerate(keys)])
    assert len({key_slot(key) for key in keys}) > 30
    values = await store.execute("MGET", *keys[:20], "missing", *keys[20:])
    assert values == [f"v{n}".encode() for n in range(20)] + [None] + [
        f"v{n}".encode() for n in range(20, 40)
    ]
    assert await store.execute("DEL", *keys[:10], "missing") == 10
    assert await store.execute("EXISTS", *keys[:20]) == 10


async def test_dedupe_batch_of_one_source_is_one_slot_and_of_many_sources_still_works(
    store: RedisStore,
) -> None:
    dedupe = Deduplicator(store, 60)
    one = [dedupe.key("mes-1", f"event-{n}") for n in range(20)]
    assert len({key_slot(key) for key in one}) == 1
    many = [dedupe.key(f"mes-{n}", "event") for n in range(20)]
    assert len({key_slot(key) for key in many}) > 1
    await dedupe.mark(one[3], [])
    await dedupe.mark(many[5], [])

    def claims(keys: list[str]) -> list[tuple[str, bytes]]:
        return [(key, dedupe.new_claim()) for key in keys]

    held = await dedupe.claim_many(claims(one))  # claimed now, except the recorded one
    assert [r is not None for r in held] == [n == 3 for n in range(20)]
    held = await dedupe.claim_many(claims(many))
    assert [r is not None for r in held] == [n == 5 for n in range(20)]
    again = await dedupe.claim_many(claims(one))  # every key held: a claim or the record
    assert [dedupe.is_claim(r) for r in again if isinstance(r, bytes)] == [
        n != 3 for n in range(20)
    ]


async def test_xread_of_streams_in_several_slots_is_merged_in_key_order(
    store: RedisStore,
) -> None:
    streams = [store.key("s", f"{{scope{n}}}", "changes") for n in range(6)]
    assert len({key_slot(key) for key in streams}) > 1
    for n, key in enumerate(streams):
        if n % 2 == 0:
            await store.execute("XADD", key, "*", "n", n)
    reply = await store.execute("XREAD", "COUNT", 10, "STREAMS", *streams, *["0"] * 6)
    assert [stream[0] for stream in reply] == [key.encode() for key in streams[::2]]
    assert await store.execute("XREAD", "STREAMS", streams[1], streams[3], "0", "0") is None


async def test_change_feed_reads_scopes_on_every_primary(store: RedisStore) -> None:
    feed = ChangeFeed(store)
    scopes = [f"line{n}" for n in range(12)]
    for scope in scopes:
        await store.execute(
            "XADD", feed._keys(scope).changes, "*",
            "id", scope, "op", "upsert", "seq", 1, "st", 1, "sub", 0, "res", 0,
        )  # fmt: skip
    batches = await feed.read([(scope, "0") for scope in scopes], count=10)
    assert [batch[0].job_id for batch in batches] == scopes
    await feed.save({scope: "c" for scope in scopes})
    assert await feed.cursor(scopes[7]) == "c"


async def test_scripts_load_on_every_primary_and_run_on_the_keys_primary(
    cluster: LocalRedisCluster, store: RedisStore
) -> None:
    source = f"return redis.call('INCR', KEYS[1]) -- {time.monotonic_ns()}"
    script = Script(store, "test.incr", source, raw)
    for primary in cluster.primaries:
        assert primary.call("SCRIPT", "EXISTS", script.sha) == [0]
    keys = [store.key("{a}", "n"), store.key("{b}", "n"), store.key("{c}", "n")]
    assert [await script([key], []) for key in keys] == [1, 1, 1]
    for primary in cluster.primaries:
        assert primary.call("SCRIPT", "EXISTS", script.sha) == [1]
    for key in keys:
        assert cluster.primary_of(key).call("GET", key) == b"1"


async def test_ping_is_true_on_a_healthy_cluster(store: RedisStore) -> None:
    assert await store.ping()


async def test_blocking_stream_read_of_the_cluster_client_outlasts_the_command_timeout(
    cluster: LocalRedisCluster,
) -> None:
    config = redis_config(cluster, key_prefix="c1block", command_timeout=0.5)
    async with RedisStore(config) as store:
        key = store.key("{sfc}", "work")
        await store.guarded(store.client.xgroup_create(key, "g", "0", mkstream=True))
        started = time.monotonic()
        reply = await store.guarded(
            store.client.xreadgroup("g", "c", {key: ">"}, count=1, block=1200)
        )
        assert reply == [] or reply == {} or reply is None
        assert time.monotonic() - started >= 1.1
        await store.execute("XADD", key, "*", "f", "v")
        reply = await store.guarded(store.client.xreadgroup("g", "c", {key: ">"}, count=1))
        assert reply


async def test_a_single_server_configured_as_a_cluster_is_refused(tmp_path: Path) -> None:
    with LocalRedis(tmp_path, appendonly=False) as server:
        config = redis_config(0, mode="cluster", nodes=f"127.0.0.1:{server.port}")
        with pytest.raises(ConfigurationError, match="APP_REDIS_MODE"):
            async with RedisStore(config):
                pass


async def test_a_cluster_not_up_at_start_is_waited_for(tmp_path: Path) -> None:
    cluster = LocalRedisCluster(tmp_path / "late")
    async with RedisStore(redis_config(cluster, key_prefix="late")) as store:
        assert not await store.ping()
        with pytest.raises(StorageUnavailableError):
            await store.execute("SET", "k", "v")
        await asyncio.to_thread(cluster.create)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        assert await store.execute("SET", "k", "v") == b"OK"
                        break
                    except StorageUnavailableError:
                        await asyncio.sleep(0.1)
            assert await store.ping()
        finally:
            cluster.close()


async def test_every_node_connection_logs_in_and_a_wrong_password_is_named(
    tmp_path: Path,
) -> None:
    with LocalRedisCluster(tmp_path / "auth") as cluster:
        for node in cluster.all_nodes:
            node.call("CONFIG", "SET", "requirepass", "secret")
        wrong = redis_config(cluster, key_prefix="a", password="wrong")
        with pytest.raises(ConfigurationError, match="APP_REDIS_PASSWORD"):
            async with RedisStore(wrong):
                pass
        async with RedisStore(redis_config(cluster, key_prefix="a", password="secret")) as store:
            await asyncio.gather(*(store.execute("SET", key, 1) for key in KEYS))
            assert await store.execute("MGET", *KEYS) == [b"1"] * len(KEYS)
            assert await store.guarded(store.client.get(KEYS[0])) == b"1"
            assert await store.ping()


# -- resharding ------------------------------------------------------------------------------
async def test_a_slot_migrated_is_followed_by_ask_during_and_moved_after(
    tmp_path: Path,
) -> None:
    with LocalRedisCluster(tmp_path / "reshard") as cluster:
        async with RedisStore(redis_config(cluster, key_prefix="r")) as store:
            connection = pipeline(store)
            first, second = "r:{moving}:1", "r:{moving}:2"
            slot = key_slot(first)
            source = cluster.primary_of(first)
            target = next(n for n in cluster.primaries if n is not source)
            await store.execute("SET", first, "one")
            await store.execute("SET", second, "two")
            assert connection.node_of(slot) == address(source)

            target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
            source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))
            source.call("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", first)
            # ASK: the migrated key is read from the target, the slot stays the source's.
            assert await store.execute("GET", first) == b"one"
            assert await store.execute("GET", second) == b"two"
            assert connection.node_of(slot) == address(source)

            source.call("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", second)
            for node in cluster.primaries:
                node.call("CLUSTER", "SETSLOT", slot, "NODE", node_id(target))
            # MOVED: the slot is the target's now, in the map too.
            assert await store.execute("GET", first) == b"one"
            assert connection.node_of(slot) == address(target)
            assert await asyncio.gather(
                store.execute("GET", second), store.execute("SET", first, "uno")
            ) == [b"two", b"OK"]
            assert target.call("GET", first) == b"uno"


# -- faults ----------------------------------------------------------------------------------
def keys_of(cluster: LocalRedisCluster, node: LocalRedisNode, others: bool) -> list[str]:
    return [k for k in KEYS if (cluster.primary_of(k) is node) != others][:20]


@pytest.mark.parametrize("fault", ["pause", "kill"])
async def test_a_primary_down_fails_only_its_slots_and_readiness(
    tmp_path: Path, fault: str
) -> None:
    # A long node timeout: the others keep the cluster ok (and serving) meanwhile.
    with LocalRedisCluster(tmp_path / fault, node_timeout_ms=30000) as cluster:
        config = redis_config(cluster, key_prefix="f", command_timeout=0.5)
        async with RedisStore(config) as store:
            await asyncio.gather(*(store.execute("SET", key, key) for key in KEYS))
            down = cluster.initial_primaries[1]
            theirs, ours = keys_of(cluster, down, False), keys_of(cluster, down, True)
            getattr(cluster, fault)(down)
            try:
                results = await asyncio.gather(
                    *(store.execute("GET", key) for key in theirs + ours),
                    return_exceptions=True,
                )
                assert all(isinstance(r, StorageUnavailableError) for r in results[:20])
                assert results[20:] == [key.encode() for key in ours]
                assert not await store.ping()
                # Still so on the next attempt (the map was read again, nobody took over).
                again = await asyncio.gather(
                    store.execute("GET", theirs[0]), store.execute("GET", ours[0]),
                    return_exceptions=True,
                )  # fmt: skip
                assert isinstance(again[0], StorageUnavailableError)
                assert again[1] == ours[0].encode()
            finally:
                if fault == "pause":
                    cluster.resume(down)
                else:
                    cluster.start(down)
            async with asyncio.timeout(10):
                while not await store.ping():
                    await asyncio.sleep(0.2)
            expected = theirs[0].encode() if fault == "pause" else None  # killed: no data
            assert await store.execute("GET", theirs[0]) == expected
            assert await store.execute("SET", theirs[0], "again") == b"OK"


async def test_a_failover_is_found_by_the_next_command(tmp_path: Path) -> None:
    with LocalRedisCluster(tmp_path / "failover", replicas=1) as cluster:
        config = redis_config(cluster, key_prefix="fo", command_timeout=0.5)
        async with RedisStore(config) as store:
            key = "fo:{failover}:k"
            await store.execute("SET", key, "before")
            script = Script(store, "test.get", "return redis.call('GET', KEYS[1])", raw)
            assert await script([key], []) == b"before"
            old = cluster.primary_of(key)
            async with asyncio.timeout(5):
                while old.call("INFO", "replication")["connected_slaves"] < 1:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the replica has the write
            cluster.kill(old)
            with pytest.raises(StorageUnavailableError):
                await store.execute("GET", key)
            await asyncio.to_thread(cluster.wait_failover, key, old)
            async with asyncio.timeout(10):
                while True:
                    try:
                        assert await store.execute("GET", key) == b"before"
                        break
                    except StorageUnavailableError:
                        await asyncio.sleep(0.1)
            new = cluster.primary_of(key)
            assert pipeline(store).node_of(key_slot(key)) == address(new)
            assert await store.ping()
            # The promoted replica got the scripts when it joined the map.
            assert new.call("SCRIPT", "EXISTS", script.sha) == [1]
            assert await script([key], []) == b"before"


# -- the runtime -----------------------------------------------------------------------------
async def test_store_over_mqtt_is_answered_good_and_background_tasks_do_not_crash(
    mosquitto: LocalMosquitto, cluster: LocalRedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(mosquitto.port, cluster)
    assert config.redis.mode == "cluster"
    caplog.set_level(logging.INFO)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        async with RedisStore(config.redis) as store:
            await store.execute("SADD", scopes_key(store), SCOPE)  # the engine's loops run
        station = Station(mes, config.jobs_prefix, runtime)
        retained = await station.watch("order/J1")
        assert await station.store("J1") == 1
        assert await station.store("J2", "StoreAndStart") == 1
        await retained_until(retained, lambda m: m.payload)
        assert await station.do("Cancel", "J1") == 1
        assert await runtime.store.ping()
        await asyncio.sleep(2.0)  # several rounds of the engine's and publisher's loops
        assert all(runtime.app.task_health().values()), runtime.app.task_health()
        assert not runtime.mqtt.stats.failed
    crashes = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert crashes == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_response_error_of_a_bad_command_is_not_a_redirect(store: RedisStore) -> None:
    await store.execute("SET", "plain", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await store.execute("HGET", "plain", "f")
