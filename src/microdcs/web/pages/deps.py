"""What the pages are handed: the read ports, the alarm actions and the live hub.

Built by the app (``app/wiring/webdata.py``: :func:`page_deps`) so the pages import no
storage; a unit test fills it with plain fakes. The server enters :attr:`PageDeps.hub`
(``async with deps.hub:``) for as long as it serves the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from microdcs.plantdata.contract import TagReader
from microdcs.web.live import LiveHub
from microdcs.web.ports import AlarmService, JobReader, ReplicaDirectory, TagDirectory

__all__ = ["PageDeps"]


@dataclass(frozen=True, slots=True)
class PageDeps:
    jobs: JobReader
    alarms: AlarmService
    tags: TagDirectory
    #: ``None`` where plant data is not wired: the tags page shows definitions only.
    tag_reader: TagReader | None
    replicas: ReplicaDirectory
    hub: LiveHub = field(default_factory=LiveHub)
    #: Shown in each page's header (the plant or line name).
    title: str = "microdcs"
    #: How many values of each tag the tags page keeps for its trend.
    trend_points: int = 60
