"""Redis storage: connection ownership, pipelined command batching, dedupe."""

from microdcs.storage.dedupe import Deduplicator
from microdcs.storage.redis import CommandBatcher, RedisStore

__all__ = ["CommandBatcher", "Deduplicator", "RedisStore"]
