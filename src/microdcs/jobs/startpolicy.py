"""Who moves a job from AllowedToStart to Running, and how the SFC engine hooks in.

The processor tells a :class:`StartPolicy` whenever a job becomes AllowedToStart and every
:class:`JobListener` about moves the MES caused (pause, resume, stop, abort, ...). The
policy and the SFC engine act back through :class:`JobControl`, which the processor
implements, so status events and retained topics follow whoever moved the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from microdcs.jobs.returnstatus import ReturnStatus
from microdcs_models.machinery_jobs import ISA95ParameterDataType
from microdcs_models.sfc_recipe import SfcRecipe

#: The dataschema of work master data that the SFC engine runs.
SFC_RECIPE_SCHEMA = SfcRecipe.__ce_dataschema__ or ""


class JobEventKind(StrEnum):
    """What happened to a job, as seen by the start policy and the SFC engine."""

    ALLOWED_TO_START = "allowed_to_start"
    START_REVOKED = "start_revoked"
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


class StartPolicy(Protocol):
    """Decides when a job that became AllowedToStart runs."""

    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None: ...


class JobListener(Protocol):
    """Told about every job move (the SFC engine pauses, resumes or aborts its recipe)."""

    async def __call__(self, event: JobEvent) -> None: ...


class DefaultStartPolicy:
    """A job without an SFC recipe runs at once; one with a recipe waits for the engine."""

    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None:
        if not event.has_sfc_recipe:
            await control.start_job(event.subject, event.job_id)
