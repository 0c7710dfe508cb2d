"""Redis storage: connection ownership, pipelined commands, script objects, dedupe."""

from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import RedisStore
from microdcs.storage.resp import RespConnection
from microdcs.storage.script import Script

__all__ = ["Deduplicator", "RedisStore", "RespConnection", "Script"]
