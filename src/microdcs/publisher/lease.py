"""A Redis lease: at most one replica holds a role, and a dead holder loses it in time."""

from __future__ import annotations

from pathlib import Path

from microdcs.storage.redis import RedisStore
from microdcs.storage.script import Script, raw

_LUA = Path(__file__).parent / "lua"


class Lease:
    """Held by ``holder`` while it renews within ``seconds``; expires on its own otherwise."""

    def __init__(self, store: RedisStore, key: str, holder: str, seconds: float) -> None:
        self.key = key
        self.holder = holder
        self.seconds = seconds
        self._hold = Script.load(store, "lease.hold", _LUA / "lease.lua", bool)
        self._release = Script.load(store, "lease.release", _LUA / "release.lua", raw)

    async def hold(self) -> bool:
        """Acquire or renew; True when we hold the lease for another ``seconds``."""
        ms = max(1, int(self.seconds * 1000))
        return await self._hold([self.key], [self.holder, ms])

    async def release(self) -> None:
        """Give the lease up so a standby takes over at once (only if we hold it)."""
        await self._release([self.key], [self.holder])
