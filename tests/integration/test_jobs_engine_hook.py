"""The hook the SFC engine uses: it learns about MES moves and moves jobs itself, with the
same status events and retained topics as MES methods."""

from __future__ import annotations

from dataclasses import replace

from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA, JobEvent, JobEventKind
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs_models.machinery_jobs import ISA95ParameterDataType
from tests.conftest import running
from tests.integration.test_jobs_helpers import Station, next_json, retained_until, state_numbers
from tests.mesclient import MesClient


def job_processor(runtime: Runtime) -> JobManagementProcessor:
    return runtime.jobs


async def test_engine_is_told_and_moves_jobs_with_events_and_retained_result(
    config: AppConfig,
) -> None:
    # This test plays the engine itself with a placeholder recipe; the real one stays out.
    config = replace(config, sfc_engine_enabled=False)
    seen: list[JobEvent] = []

    async def listener(event: JobEvent) -> None:
        seen.append(event)

    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        processor = job_processor(runtime)
        processor.add_listener(listener)
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        result = await station.watch("result/J1")
        one_step = {"Steps": [{"Name": "only", "Initial": True}], "Transitions": []}
        recipe = {"ID": "WM-R", "data": one_step, "dataschema": SFC_RECIPE_SCHEMA}
        await station.configure("workmaster", recipe)
        assert await station.store("J1", "StoreAndStart", WorkMasterID=[{"ID": "WM-R"}]) == 1
        # The dispatcher starts it (a free slot) and tells the engine, which runs the recipe.
        assert [e.kind for e in seen] == [JobEventKind.ALLOWED_TO_START, JobEventKind.STARTED]
        assert seen[-1].has_sfc_recipe and not seen[-1].by_mes
        assert await processor.start_job("woodworking", "J1") == 8  # already Running
        assert await station.do("Pause", "J1") == 1
        assert seen[-1].kind is JobEventKind.PAUSED and seen[-1].by_mes
        assert await station.do("Resume", "J1") == 1
        data = [ISA95ParameterDataType(id="Pieces", value=12)]
        assert await processor.end_job("woodworking", "J1", data) == ReturnStatus.OK
        assert await processor.end_job("woodworking", "J1", data) == 8
        states = [state_numbers((await next_json(events))["JobState"]) for _ in range(5)]
        assert states == [[2, 2], [3], [4, 1], [3], [5, 1]]
        final = await retained_until(result, lambda m: m.json()["JobState"][0]["StateNumber"] == 5)
        assert final.json()["JobResponseData"] == [{"ID": "Pieces", "Value": 12}]


async def test_engine_abort_records_the_reason(config: AppConfig) -> None:
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        processor = job_processor(runtime)
        station = Station(mes, config.jobs_prefix, runtime)
        assert await station.store("J1", "StoreAndStart") == 1
        assert await processor.abort_job("woodworking", "J1", "spindle broke") == 1
        reply = await station.call_raw("RequestJobResponseByJobOrderID", {"JobOrderID": "J1"})
        response = reply.json()["JobResponse"]
        assert state_numbers(response["JobState"]) == [6]
        assert response["JobResponseData"][0]["Value"] == "spindle broke"
