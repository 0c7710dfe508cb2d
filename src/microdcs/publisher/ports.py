"""What the publisher needs from the outside, declared by the publisher itself.

The app hands it an implementation of each (the MQTT one lives with the transport), so
the publisher imports no transport and no job-management internals, and its tests can
give it in-memory stand-ins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from microdcs.jobs.contract import JobStatus

if TYPE_CHECKING:
    from microdcs.publisher.changes import ChangeReader


class RetainedOutlet(Protocol):
    """Retained state on the broker: publish, delete, read one topic back.

    The ``*_nowait`` methods queue the message and return what completes on the broker's
    acknowledgement, so a pass awaits thousands of them together; they raise
    :class:`~microdcs.core.errors.OutgoingEventError` (or ``ValueError``) at once for a
    topic the broker would refuse.
    """

    @property
    def connected(self) -> asyncio.Event:
        """Set while the broker connection is up (and subscribed)."""
        ...

    def publish_nowait(self, topic: str, payload: bytes, *, expiry: int | None) -> Awaitable[None]:
        """Queue retained ``payload`` (QoS 1) expiring after ``expiry`` s (``None``: never)."""
        ...

    async def publish(self, topic: str, payload: bytes, *, expiry: int | None) -> None:
        """:meth:`publish_nowait`, waiting for room to send and for the acknowledgement."""
        ...

    def delete_nowait(self, topic: str) -> Awaitable[None]:
        """Queue the removal of the retained message on ``topic``."""
        ...

    def on_session(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(session_present)`` after every (re)connect: ``False`` means the
        broker kept nothing of ours, and maybe not even our retained messages."""
        ...

    async def read_retained(self, topic: str) -> bytes | None:
        """The retained message on ``topic`` right now (``None``: there is none).

        Raises :class:`~microdcs.core.errors.BrokerUnavailableError` when the broker
        does not say.
        """
        ...


class ListedJob(Protocol):
    """A listed job as the publisher reads it: what ``order/`` and ``result/`` show."""

    @property
    def job_id(self) -> str: ...

    @property
    def order_json(self) -> bytes:
        """The job order as stored (JSON)."""
        ...

    @property
    def status(self) -> JobStatus: ...

    @property
    def has_response(self) -> bool: ...

    def response_raw(self) -> dict[str, Any]:
        """The ISA95JobResponseDataType JSON object of the job."""
        ...


class ScopeSnapshot(Protocol):
    """A scope's job list at change counter ``seq`` (change stream entry ``last_id``)."""

    @property
    def seq(self) -> int: ...

    @property
    def last_id(self) -> str: ...

    @property
    def jobs(self) -> Sequence[tuple[str, JobStatus, bool]]:
        """``(job id, status, has result)`` of every listed job."""
        ...


class JobFeed(Protocol):
    """What the publisher reads of job management (the job store implements it)."""

    @property
    def changes(self) -> ChangeReader:
        """The scopes' change streams and the publisher's cursors of them."""
        ...

    async def scopes(self) -> set[str]:
        """Every scope that has ever had a job."""
        ...

    async def snapshot(self, scope: str) -> ScopeSnapshot:
        """The scope's listed jobs with its change counter, in one atomic read."""
        ...

    async def listed_many(self, jobs: Sequence[tuple[str, str]]) -> Sequence[ListedJob | None]:
        """Each ``(scope, job id)`` as it is now (``None``: it left the list)."""
        ...
