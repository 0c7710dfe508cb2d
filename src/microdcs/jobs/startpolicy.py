"""Who moves a job from AllowedToStart to Running, and how the SFC engine hooks in.

The processor tells a :class:`StartPolicy` whenever a job becomes AllowedToStart and every
:class:`JobListener` about moves the MES caused (pause, resume, stop, abort, ...). The
policy and the SFC engine act back through :class:`JobControl`, which the processor
implements, so status events and retained topics follow whoever moved the job.
"""

from __future__ import annotations

from typing import Protocol

from microdcs.jobs.contract import JobControl, JobEvent


class StartPolicy(Protocol):
    """Decides when a job that became AllowedToStart runs."""

    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None: ...


class DefaultStartPolicy:
    """A job without an SFC recipe runs at once; one with a recipe waits for the engine."""

    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None:
        if not event.has_sfc_recipe:
            await control.start_job(event.subject, event.job_id)
