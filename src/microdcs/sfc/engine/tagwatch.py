"""Re-evaluation on tag change: the engine's :class:`TagChangeListener`.

Why through Redis and not in memory: the execution that waits on a tag may be held by
any replica (or by none, between two work items), while the change is stored by the
replica that received the data event. Each execution records, in the same CAS that
stores its state, which tags its enabled transitions read (a set of job ids per tag,
``tagwatch:<tag>``, under the scope's hash tag). On a change this listener turns the
watchers into ``tags`` work items on the scope's work stream in one script, so whichever
replica reads the item evaluates the conditions, and the CAS on the version keeps a
transition from firing twice however many replicas and changes race. No poll loop: a
tag nobody waits on costs one script call that finds empty sets.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from microdcs.core.errors import StorageUnavailableError
from microdcs.plantdata.contract import TagChange, TagSample
from microdcs.sfc.compiled import CompiledRecipe
from microdcs.sfc.engine.keys import EngineKeys
from microdcs.sfc.engine.ports import TagValues
from microdcs.sfc.engine.tracecontext import Carried
from microdcs.storage.redis import RedisStore
from microdcs.storage.replies import number
from microdcs.storage.script import Script

logger = logging.getLogger(__name__)
_LUA = Path(__file__).parent / "lua"


def changed_tags(changes: Sequence[TagChange]) -> list[str]:
    """Tags whose value or quality changed (what ``tag()`` and ``quality()`` see), sorted.

    A change that only renews a timestamp cannot change a condition's outcome.
    """
    return sorted({c.sample.tag for c in changes if _differs(c.previous, c.sample)})


NO_TAGS: Mapping[str, TagSample] = {}


async def read_tags(
    reader: TagValues | None, scope: str, recipe: CompiledRecipe
) -> Mapping[str, TagSample]:
    """The snapshot a work item is evaluated with: every tag the recipe reads (none, and
    no read, for the usual recipe that reads no tag)."""
    if reader is None or not recipe.tags:
        return NO_TAGS
    return await reader.read(scope, sorted(recipe.tags))


async def changed_since(
    reader: TagValues | None,
    scope: str,
    tags: Collection[str],
    snapshot: Mapping[str, TagSample],
) -> bool:
    """Whether a tag an execution has just started watching changed after ``snapshot``.

    Read after the CAS that stored the watch: a change stored before it found no watcher
    (so queued nothing) but is seen here, and one stored after it finds the watcher.
    """
    if reader is None or not tags:
        return False
    now = await reader.read(scope, sorted(tags))
    return any(_differs(snapshot.get(tag), now.get(tag)) for tag in tags)


def _differs(before: TagSample | None, after: TagSample | None) -> bool:
    if before is None or after is None:
        return before is not after
    return (
        before.value != after.value
        or type(before.value) is not type(after.value)
        or before.quality != after.quality
    )


class TagWatch:
    """Queues a re-evaluation of every execution whose enabled transitions read a
    changed tag (registered with the plant data table on every replica)."""

    def __init__(self, store: RedisStore, *, maxlen: int) -> None:
        self.redis = store
        self.maxlen = maxlen
        #: Work items queued so far (a metric), and changes lost to a Redis outage.
        self.queued = 0
        self.lost = 0
        self._script = Script.load(store, "sfc.tags", _LUA / "tags.lua", number)

    async def tags_changed(self, scope: str, changes: Sequence[TagChange]) -> None:
        tags = changed_tags(changes)
        if not tags:
            return
        keys = EngineKeys.of(self.redis, scope)
        trace = Carried.current()  # the data event's span: the re-evaluation links to it
        try:
            self.queued += await self._script(
                [keys.work, *(keys.tag_watch(tag) for tag in tags)],
                [self.maxlen, trace.traceparent, trace.tracestate],
            )
        except StorageUnavailableError as exc:
            # Ingestion goes on; a waiting job sees the value at its next event, its
            # watchdog or a Resume (the change itself is stored by the table).
            self.lost += 1
            logger.warning("tag change of %s in %s not passed to the SFC engine: %s",
                           ", ".join(tags), scope, exc)  # fmt: skip
