"""Redis key layout of job management: one Redis Cluster hash tag per scope.

Every key of a scope shares the tag ``{scope}``, so each Lua script (which may only touch
keys of one slot) can read and write all of them atomically. The scope is escaped inside
its tag (:func:`~microdcs.storage.keys.hash_tag`), so no crafted scope or job id reaches
another scope's keys. Job ids are the last part of their keys and need no escaping; the
Lua scripts that derive job keys from the key base (``snapshot``, ``responses``) append
the raw id just as :meth:`ScopeKeys.job` does. The scopes set holds raw scope names, so
discovery needs no inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.storage.keys import hash_tag
from microdcs.storage.redis import RedisStore

#: Station configuration sets, in the order the store script checks them.
ID_KINDS = ("equipment", "materialclass", "materialdefinition", "personnel", "physicalasset")


@dataclass(frozen=True, slots=True)
class ScopeKeys:
    """The keys of one scope."""

    base: str

    @classmethod
    def of(cls, store: RedisStore, scope: str) -> ScopeKeys:
        return cls(store.key("jobs", hash_tag(scope)) + ":")

    def job(self, job_id: str) -> str:
        return f"{self.base}job:{job_id}"

    def archived(self, job_id: str) -> str:
        return f"{self.base}result:{job_id}"

    def tombstone(self, job_id: str) -> str:
        """The origin of a deleted job's Store, kept for the response retention."""
        return f"{self.base}gone:{job_id}"

    @property
    def list(self) -> str:
        return f"{self.base}list"

    @property
    def changes(self) -> str:
        return f"{self.base}changes"

    @property
    def seq(self) -> str:
        return f"{self.base}seq"

    @property
    def responses(self) -> str:
        return f"{self.base}responses"

    @property
    def cursor(self) -> str:
        """Where the publisher has got to in the change stream."""
        return f"{self.base}cursor"

    # -- the station dispatcher (dispatch.lua; put_order.lua and transition.lua derive
    # -- these names from the key base too, so keep the suffixes in step with queue.lua)
    @property
    def queue(self) -> str:
        """AllowedToStart jobs that may start now: score Priority, member start order."""
        return f"{self.base}dq"

    @property
    def due(self) -> str:
        """AllowedToStart jobs whose StartTime lies ahead: score StartTime (ms)."""
        return f"{self.base}dd"

    @property
    def active(self) -> str:
        """Running and Interrupted jobs: the slots of the station in use."""
        return f"{self.base}active"

    @property
    def fresh(self) -> str:
        """Jobs that (re-)entered the queue and whose substate the dispatcher settles."""
        return f"{self.base}dnew"

    @property
    def ready(self) -> str:
        """The job the dispatcher last marked AllowedToStart/Ready."""
        return f"{self.base}dready"

    @property
    def handover(self) -> str:
        """Jobs the dispatcher started whose start is not yet announced (id -> ms)."""
        return f"{self.base}dstarted"

    @property
    def closing(self) -> str:
        """Ended/Completed jobs due to be Closed (id -> ms)."""
        return f"{self.base}closing"

    def config(self, kind: str) -> str:
        return f"{self.base}cfg:{kind}"


def scopes_key(store: RedisStore) -> str:
    """The set of every scope that has job data (for the publisher's discovery)."""
    return store.key("jobs", "scopes")
