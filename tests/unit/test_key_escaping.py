"""Redis keys built from scopes and ids are injective and keep one scope in one slot."""

from __future__ import annotations

import pytest

from microdcs.app.config import RedisConfig
from microdcs.jobs.keys import ScopeKeys
from microdcs.sfc.engine.keys import EngineKeys
from microdcs.storage.keys import escape_key_part, hash_tag, unescape_key_part
from microdcs.storage.redis import RedisStore

STORE = RedisStore(RedisConfig(key_prefix="p"))
HOSTILE = ["a", "a}", "a}:job:x", "x}:job:y", "{a}", "a%7D", "a%", "%", "a:b", "a\x00b",
           "a\nb", "a\x85b", "a\ud800b", "ü/ß.€", "}", "{", "", "y"]  # fmt: skip


def redis_hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text between the first ``{`` and the next ``}``."""
    start = key.find("{")
    if start < 0:
        return key
    end = key.find("}", start + 1)
    if end < 0 or end == start + 1:
        return key
    return key[start + 1 : end]


def job_keys(scope: str, job_id: str) -> list[str]:
    k, e = ScopeKeys.of(STORE, scope), EngineKeys.of(STORE, scope)
    return [k.job(job_id), k.archived(job_id), e.execution(job_id), e.pull(job_id)]


def scope_keys(scope: str) -> list[str]:
    k, e = ScopeKeys.of(STORE, scope), EngineKeys.of(STORE, scope)
    return [k.list, k.changes, k.seq, k.responses, k.cursor, k.config("equipment"),
            e.work, e.timers, e.active, e.awaiting]  # fmt: skip


SCOPES = [s for s in HOSTILE if s]


@pytest.mark.parametrize("scope", ["woodworking", "plant.line", ".", "a:b", "ü-ß", "A_1-2"])
def test_ordinary_scopes_keep_the_keys_they_had(scope: str) -> None:
    assert ScopeKeys.of(STORE, scope).job("J1") == "p:jobs:{" + scope + "}:job:J1"
    assert EngineKeys.of(STORE, scope).execution("J1") == "p:sfc:{" + scope + "}:exec:J1"


@pytest.mark.parametrize("name", HOSTILE)
def test_escaping_round_trips_and_leaves_no_brace_or_control(name: str) -> None:
    escaped = escape_key_part(name)
    assert unescape_key_part(escaped) == name
    assert not set(escaped) & set("{}\x00\n\x85")
    assert escaped.encode() == escaped.encode("utf-8", "strict")  # redis-py can send it


def test_escaping_is_injective() -> None:
    names = HOSTILE + [escape_key_part(n) for n in HOSTILE]
    escaped = {escape_key_part(n) for n in names}
    assert len(escaped) == len(set(names))


def test_crafted_scope_and_id_cannot_name_another_scopes_job() -> None:
    # The attack of issue 12: scope "a" job "x}:job:y" vs scope "a}:job:x" job "y".
    assert ScopeKeys.of(STORE, "a").job("x}:job:y") != ScopeKeys.of(STORE, "a}:job:x").job("y")


def test_no_two_scopes_or_jobs_share_a_key() -> None:
    owners: dict[str, tuple[str, ...]] = {}
    for scope in SCOPES:
        for key in scope_keys(scope):
            assert owners.setdefault(key, (scope,)) == (scope,), key
        for job_id in HOSTILE:
            for key in job_keys(scope, job_id):
                assert owners.setdefault(key, (scope, job_id)) == (scope, job_id), key


@pytest.mark.parametrize("scope", SCOPES)
def test_every_key_of_a_scope_hashes_to_its_own_tag(scope: str) -> None:
    tags = {redis_hash_tag(key) for key in scope_keys(scope) + job_keys(scope, "x}:job:{y}")}
    assert tags == {escape_key_part(scope)}
    assert hash_tag(scope) == "{" + escape_key_part(scope) + "}"
