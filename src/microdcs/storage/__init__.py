"""Redis storage: connection ownership, pipelined commands, dedupe."""

from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.storage.resp import RespConnection

__all__ = ["Deduplicator", "RedisStore", "RespConnection"]
