"""Names of the retained job topics, ``{prefix}/{scope...}/order/{id}`` and the rest.

The publisher builds its own topic names so it depends on no transport's layout: the
names are part of the MES contract (see ``docs/jobs.md``), and the only rules they share
with a processor's binding are the prefix and the scope levels of a subject.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.processing.routing import check_topic_prefix, scope_levels_within


@dataclass(frozen=True, slots=True)
class RetainedTopics:
    """The retained topics under the job processor's ``prefix``, ``max_levels`` deep."""

    prefix: str
    max_levels: int = 3

    def __post_init__(self) -> None:
        check_topic_prefix(self.prefix, self.max_levels)

    @property
    def metadata(self) -> str:
        """What the job processor answers and raises."""
        return f"{self.prefix}/metadata"

    @property
    def marker(self) -> str:
        """The marker that proves the broker still holds our retained state."""
        return f"{self.prefix}/retained-marker"

    def order(self, subject: str | None, job_id: str) -> str:
        return self._scoped(subject, "order", job_id)

    def result(self, subject: str | None, job_id: str) -> str:
        return self._scoped(subject, "result", job_id)

    def state_index(self, subject: str | None) -> str:
        return self._scoped(subject, "state-index")

    def _scoped(self, subject: str | None, *tail: str) -> str:
        levels = scope_levels_within(subject, self.max_levels)
        return "/".join((self.prefix, *levels, *tail))
