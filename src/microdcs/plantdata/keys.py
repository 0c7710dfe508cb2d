"""Redis key layout of the current value table: one Redis Cluster hash tag per scope.

Every key a script touches carries the scope's tag ``{scope}`` (escaped, see
:func:`~microdcs.storage.keys.hash_tag`), so an ingest is one script in one slot and runs
unchanged on Redis Cluster. Tag names are hash fields and sorted-set members, never key
parts. Only the set of scopes (for the stale task's discovery) lives outside a scope's
slot, and it is written outside scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.storage.keys import hash_tag
from microdcs.storage.redis import RedisStore


@dataclass(frozen=True, slots=True)
class PlantKeys:
    """The keys of one scope."""

    base: str

    @classmethod
    def of(cls, store: RedisStore, scope: str) -> PlantKeys:
        return cls(store.key("plant", hash_tag(scope)) + ":")

    @property
    def definitions(self) -> str:
        """Hash: tag -> definition (the ``...config.tag.v1`` payload as JSON)."""
        return f"{self.base}defs"

    @property
    def specs(self) -> str:
        """Hash: tag -> ``"<type> <deadband> <stale timeout>"``, what the scripts read."""
        return f"{self.base}spec"

    @property
    def cvt(self) -> str:
        """Hash: tag -> ``"<quality><stale> <source time> <receive time> <value>"``."""
        return f"{self.base}cvt"

    @property
    def stale(self) -> str:
        """Sorted set: tag scored by the time it turns stale (Unix seconds)."""
        return f"{self.base}stale"


def scopes_key(store: RedisStore) -> str:
    return store.key("plant", "scopes")
