"""Redis key layout of the alarm runtime: one Redis Cluster hash tag per scope.

Every key a script touches carries the scope's tag ``{scope}`` (escaped inside it, see
:func:`~microdcs.storage.keys.hash_tag`), so each transition is one script in one slot and
runs unchanged on Redis Cluster. Alarm ids are hash fields, never key parts. Only the set
of scopes (for the timer task's discovery) lives outside a scope's slot, and it is written
outside scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.storage.keys import hash_tag
from microdcs.storage.redis import RedisStore

#: Separates alarm id and timer kind in a timer member (not expected in an alarm id).
SEP = "\x1f"
#: The field of the versions hash that holds the version of the scope's definitions.
DEFINITIONS_VERSION = "~defs"


@dataclass(frozen=True, slots=True)
class AlarmKeys:
    """The keys of one scope."""

    base: str

    @classmethod
    def of(cls, store: RedisStore, scope: str) -> AlarmKeys:
        return cls(store.key("alarms", hash_tag(scope)) + ":")

    @property
    def definitions(self) -> str:
        """Hash: alarm id -> definition (JSON)."""
        return f"{self.base}defs"

    @property
    def records(self) -> str:
        """Hash: alarm id -> state record (JSON)."""
        return f"{self.base}recs"

    @property
    def versions(self) -> str:
        """Hash: alarm id -> record version; ``~defs`` -> definitions version."""
        return f"{self.base}ver"

    @property
    def timers(self) -> str:
        """Sorted set: ``alarm SEP kind`` scored by its due time (Unix seconds)."""
        return f"{self.base}timers"

    @property
    def journal(self) -> str:
        """Stream of every transition and operator action (ids are Redis ms times)."""
        return f"{self.base}journal"

    @property
    def seq(self) -> str:
        """Counter of stored transitions: the retained list says which one it shows."""
        return f"{self.base}seq"


def scopes_key(store: RedisStore) -> str:
    return store.key("alarms", "scopes")


def timer_member(alarm: str, kind: str) -> str:
    return f"{alarm}{SEP}{kind}"


def split_timer_member(member: str) -> tuple[str, str]:
    alarm, _, kind = member.partition(SEP)
    return alarm, kind
