"""Redis key layout of the engine: one Redis Cluster hash tag per scope.

Every key a script touches carries the scope's tag ``{scope}``, so each script stays in
one slot and the engine runs unchanged on Redis Cluster. Only the set of scopes (for
discovery) lives elsewhere, and it is written outside scripts. The scope is escaped inside
its tag (:func:`~microdcs.storage.keys.hash_tag`) so no crafted scope shares another
scope's keys; job ids and event types end their keys and need no escaping.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.storage.keys import hash_tag
from microdcs.storage.redis import RedisStore

#: The consumer group every replica reads the work streams through.
GROUP = "engine"
#: Separates job id and timer key in a timer member (not expected in either).
SEP = "\x1f"
#: Timer key prefix of the engine's own "command overdue" timers (not the core's).
RESEND = "~resend:"
#: Key suffixes of the per-type pull sets and the per-tag watch sets.
PULL, TAG_WATCH = "pull:", "tagwatch:"


@dataclass(frozen=True, slots=True)
class EngineKeys:
    base: str

    @classmethod
    def of(cls, store: RedisStore, scope: str) -> EngineKeys:
        return cls(store.key("sfc", hash_tag(scope)) + ":")

    def execution(self, job_id: str) -> str:
        return f"{self.base}exec:{job_id}"

    @property
    def work(self) -> str:
        return f"{self.base}work"

    @property
    def timers(self) -> str:
        return f"{self.base}timers"

    @property
    def active(self) -> str:
        """The set of job ids whose execution is running or paused (for a gauge)."""
        return f"{self.base}active"

    @property
    def awaiting(self) -> str:
        return f"{self.base}awaiting"

    def pull(self, event_type: str) -> str:
        return f"{self.base}{PULL}{event_type}"

    def tag_watch(self, tag: str) -> str:
        """Set of job ids whose enabled transitions read ``tag`` (re-evaluated on change)."""
        return f"{self.base}{TAG_WATCH}{tag}"


def scopes_key(store: RedisStore) -> str:
    return store.key("sfc", "scopes")


def timer_member(job_id: str, key: str) -> str:
    return f"{job_id}{SEP}{key}"


def split_timer_member(member: str) -> tuple[str, str]:
    job_id, _, key = member.partition(SEP)
    return job_id, key
