"""A Lua script object: hashed once, called by SHA, reloads itself once on NOSCRIPT."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import NoScriptError, ResponseError

from microdcs.core.tracing import Tracing
from microdcs.storage.script import Script, raw

SOURCE = "return 1"
SHA = hashlib.sha1(SOURCE.encode()).hexdigest()


class FakePipeline:
    """Answers EVALSHA from a script cache that starts empty or loaded."""

    def __init__(self, *, loaded: bool) -> None:
        self.cache = {SHA} if loaded else set()
        self.commands: list[tuple[Any, ...]] = []

    async def execute(self, *args: Any) -> Any:
        self.commands.append(args)
        if args[0] == "SCRIPT":
            self.cache.add(hashlib.sha1(args[2].encode()).hexdigest())
            return args[2]
        if args[1] not in self.cache:
            raise NoScriptError("NOSCRIPT No matching script.")
        return [1, list(args[3:])]


class FakeStore:
    def __init__(self, pipeline: FakePipeline) -> None:
        self.pipeline = pipeline
        self.tracing = Tracing()


def script(pipeline: FakePipeline, **options: Any) -> Script[Any]:
    return Script(FakeStore(pipeline), "test.one", SOURCE, raw, **options)  # type: ignore[arg-type]


def test_the_sha_is_the_sha1_of_the_source() -> None:
    assert script(FakePipeline(loaded=True)).sha == SHA


def test_the_command_is_evalsha_with_the_key_count() -> None:
    assert script(FakePipeline(loaded=True)).command(["k1", "k2"], [3]) == (
        "EVALSHA", SHA, 2, "k1", "k2", 3,
    )  # fmt: skip


async def test_a_loaded_script_costs_one_command() -> None:
    pipeline = FakePipeline(loaded=True)
    assert await script(pipeline)(["k"], ["a"]) == [1, ["k", "a"]]
    assert [c[0] for c in pipeline.commands] == ["EVALSHA"]


@pytest.mark.parametrize("traced", [True, False])
async def test_noscript_loads_the_source_and_retries_once(traced: bool) -> None:
    pipeline = FakePipeline(loaded=False)
    assert await script(pipeline, traced=traced)(["k"], []) == [1, ["k"]]
    assert [c[0] for c in pipeline.commands] == ["EVALSHA", "SCRIPT", "EVALSHA"]


async def test_other_errors_are_not_retried() -> None:
    class Failing(FakePipeline):
        async def execute(self, *args: Any) -> Any:
            self.commands.append(args)
            raise ResponseError("ERR boom")

    pipeline = Failing(loaded=True)
    with pytest.raises(ResponseError):
        await script(pipeline)([], [])
    assert len(pipeline.commands) == 1


async def test_the_reply_is_read_by_the_scripts_parser() -> None:
    parsed = Script(
        FakeStore(FakePipeline(loaded=True)),  # type: ignore[arg-type]
        "test.one",
        SOURCE,
        lambda reply: len(reply[1]),
    )
    assert await parsed(["a", "b"], ["c"]) == 3
    assert parsed.reply([1, []]) == 0


def test_load_reads_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "one.lua"
    path.write_text(SOURCE, encoding="utf-8")
    loaded = Script.load(FakeStore(FakePipeline(loaded=True)), "test.one", path, raw)  # type: ignore[arg-type]
    path.unlink()
    assert loaded.source == SOURCE and loaded.sha == SHA
