"""What other parts may know of job management: its vocabulary, and the moves it offers.

The SFC engine, the publisher and the web view import job management only through this
module (the layer test enforces it). Everything here is a plain value or a small
interface: no storage, no transport, so a consumer's unit test needs none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.states import JobState, JobStatus
from microdcs_models.machinery_jobs import ISA95ParameterDataType
from microdcs_models.sfc_recipe import SfcRecipe

__all__ = [
    "ROOT_SCOPE",
    "SFC_RECIPE_SCHEMA",
    "JobControl",
    "JobEvent",
    "JobEventKind",
    "JobListener",
    "JobRecipe",
    "JobState",
    "JobStatus",
    "ReturnStatus",
    "scope_name",
    "subject_of_scope",
]

#: The scope of events without a ``subject`` (in keys and topics).
ROOT_SCOPE = "."

#: The dataschema of work master data that the SFC engine runs.
SFC_RECIPE_SCHEMA = SfcRecipe.__ce_dataschema__ or ""


def scope_name(subject: str | None) -> str:
    """The scope of a CloudEvent subject as used in keys (root scope for ``None``)."""
    return subject or ROOT_SCOPE


def subject_of_scope(scope: str) -> str | None:
    """The inverse of :func:`scope_name`."""
    return None if scope == ROOT_SCOPE else scope


class JobEventKind(StrEnum):
    """What happened to a job, as seen by the start policy and the SFC engine."""

    ALLOWED_TO_START = "allowed_to_start"
    START_REVOKED = "start_revoked"
    #: Update of the order (in NotAllowedToStart or AllowedToStart).
    UPDATED = "updated"
    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    STOPPED = "stopped"
    ABORTED = "aborted"
    ENDED = "ended"
    CANCELLED = "cancelled"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job changed; ``recipe`` is the dataschema of its work master's data ("" if none)."""

    kind: JobEventKind
    subject: str | None
    job_id: str
    recipe: str
    #: True when the MES caused it; False for system moves (start policy, engine).
    by_mes: bool = True

    @property
    def has_sfc_recipe(self) -> bool:
        return self.recipe == SFC_RECIPE_SCHEMA


class JobControl(Protocol):
    """System moves of a job; each raises the status event and updates retained state."""

    async def start_job(self, subject: str | None, job_id: str) -> ReturnStatus:
        """AllowedToStart -> Running (transition 5)."""
        ...

    async def end_job(
        self,
        subject: str | None,
        job_id: str,
        response_data: Sequence[ISA95ParameterDataType] | None = None,
    ) -> ReturnStatus:
        """Running/Interrupted -> Ended/Completed, recording the job response data."""
        ...

    async def abort_job(self, subject: str | None, job_id: str, reason: str) -> ReturnStatus:
        """Running/Interrupted -> Aborted after an unrecoverable failure."""
        ...

    async def suspend_job(self, subject: str | None, job_id: str) -> ReturnStatus:
        """Running -> Interrupted/Suspended: the equipment or the engine stopped the job
        (a Pause of the MES gives Interrupted/Held); Resume runs it again."""
        ...


class JobListener(Protocol):
    """Told about every job move (the SFC engine pauses, resumes or aborts its recipe)."""

    async def __call__(self, event: JobEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class JobRecipe:
    """The recipe (JSON of the work master's ``data``) and parameters of one job."""

    recipe_json: bytes
    parameters: Mapping[str, Any] = field(default_factory=dict)
