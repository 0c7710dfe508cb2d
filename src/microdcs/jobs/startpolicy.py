"""Who moves a job from AllowedToStart to Running, and how the SFC engine hooks in.

The processor tells a :class:`StartPolicy` whenever a job becomes AllowedToStart and every
:class:`JobListener` about moves the MES caused (pause, resume, stop, abort, ...). The
policy and the SFC engine act back through :class:`JobControl`, which the processor
implements, so status events and retained topics follow whoever moved the job.

The default policy is the station dispatcher (:mod:`microdcs.jobs.dispatcher`): at most
``max_running_jobs`` jobs of a scope at a time, by Priority, StartTime and Start. An
application that registers its own policy (for example: wait until the equipment
reports ready) starts jobs with ``control.start_job``; a job with an SFC recipe then
runs its recipe, whoever started it.
"""

from __future__ import annotations

from typing import Protocol

from microdcs.jobs.contract import JobControl, JobEvent


class StartPolicy(Protocol):
    """Decides when a job that became AllowedToStart runs."""

    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None: ...


class ImmediateStartPolicy:
    """Every job runs the moment it is AllowedToStart, however many already run (what
    microdcs did before the dispatcher; for stations that run any number of jobs)."""

    async def allowed_to_start(self, event: JobEvent, control: JobControl) -> None:
        await control.start_job(event.subject, event.job_id)
