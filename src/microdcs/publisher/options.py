"""What the retained-topic publisher is configured with (composed by the app's config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublisherOptions:
    """The publisher's part of the configuration, so it never sees the whole of it.

    No defaults: the app's configuration owns them (and their environment names).
    """

    #: Topic prefix of the job processor; the retained topics live below it.
    prefix: str
    #: Lease holder name: this replica's stable id.
    instance_id: str
    #: Maximum scope levels between the prefix and the topic's kind.
    scope_levels: int
    #: Message Expiry Interval (s) of ``order/``, ``result/`` and ``state-index``.
    retained_expiry: int
    #: Lease time: a dead holder is replaced after at most this.
    lease_seconds: float
    #: How often changes made by other replicas are looked for.
    poll_seconds: float
    #: Least time between two passes (changes made meanwhile are coalesced).
    interval_seconds: float
    #: Pacing of a large scope's ``state-index``: entries published per second at most
    #: (0: every pass that changed it).
    index_entries_per_second: int
