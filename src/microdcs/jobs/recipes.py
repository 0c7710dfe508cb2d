"""The SFC engine's recipe source over the job store: a job's order and work master.

It satisfies :class:`~microdcs.sfc.engine.ports.RecipeSource` structurally; job management
does not import the engine, the app package hands this object to it.
"""

from __future__ import annotations

import orjson

from microdcs.jobs.contract import SFC_RECIPE_SCHEMA, JobRecipe
from microdcs.jobs.states import JobState
from microdcs.jobs.storage import JobStore


class JobStoreRecipes:
    """Recipes and running state read from the job store (orders and work masters)."""

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
