"""What the engine needs from job management, and the adapter over the jobs package.

:class:`~microdcs.jobs.startpolicy.JobControl` (implemented by the job processor) moves
jobs with status events; :class:`RecipeSource` reads a job's order and work master.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from microdcs.jobs.startpolicy import SFC_RECIPE_SCHEMA
from microdcs.jobs.states import JobState
from microdcs.jobs.storage import JobStore


@dataclass(frozen=True, slots=True)
class JobRecipe:
    """The recipe (JSON of the work master's ``data``) and parameters of one job."""

    recipe_json: bytes
    parameters: dict[str, Any] = field(default_factory=dict)


class RecipeSource(Protocol):
    async def recipe(self, scope: str, job_id: str) -> JobRecipe | None:
        """The SFC recipe of the job's work master; ``None`` if it has none."""
        ...

    async def is_running(self, scope: str, job_id: str) -> bool: ...


class JobStoreRecipes:
    """:class:`RecipeSource` over the job store (orders and work masters of a scope)."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    async def recipe(self, scope: str, job_id: str) -> JobRecipe | None:
        record = await self.jobs.listed(scope, job_id)
        if record is None:
            return None
        order = record.order_raw()
        parameters = {
            p["ID"]: p.get("Value")
            for p in order.get("JobOrderParameters") or ()
            if isinstance(p, dict) and p.get("ID")
        }
        for wm in order.get("WorkMasterID") or ():
            wm_id = wm.get("ID") if isinstance(wm, dict) else None
            raw = await self.jobs.work_master(scope, wm_id) if wm_id else None
            if raw is None:
                continue
            master = orjson.loads(raw)
            if master.get("dataschema") == SFC_RECIPE_SCHEMA and master.get("data") is not None:
                return JobRecipe(orjson.dumps(master["data"]), parameters)
        return None

    async def is_running(self, scope: str, job_id: str) -> bool:
        record = await self.jobs.listed(scope, job_id)
        return record is not None and record.status.state is JobState.RUNNING
