"""Step progress events of a recipe (one per stored change) on the job's scope events
topic (scenario 15)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from microdcs.app.config import AppConfig
from microdcs.core.tracing import Tracing
from tests.conftest import running
from tests.integration.sfc_helpers import (
    configure_and_start,
    scenario_recipe,
    simulator,
    work_master,
)
from tests.integration.test_jobs_helpers import Station
from tests.mesclient import MesClient, Received

PROGRESS = "com.github.aschamberger.microdcs.sfc.progress.v1"


def is_progress(message: Received) -> bool:
    return message.attributes.get("type") == PROGRESS


async def test_every_step_event_of_a_simultaneous_branch_arrives_in_order_with_its_time(
    config: AppConfig,
) -> None:
    async with (
        running(config) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        before = time.time()
        await configure_and_start(station, "J1", scenario_recipe())
        steps: list[tuple[dict[str, Any], Received]] = []
        async with asyncio.timeout(10):
            while True:
                message = await events.get()
                if is_progress(message):
                    steps.append((message.json(), message))
                    continue
                data = message.json()
                if data.get("JobState", [{}])[0].get("StateNumber") == 5:
                    break
        after = time.time()
    assert all(m.attributes["correlationid"] == "J1" for _, m in steps)
    assert all(d["JobOrderID"] == "J1" for d, _ in steps)
    versions = [d["Version"] for d, _ in steps]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    # One event per stored change; its entries share the change's time.
    data = [{**entry, "Time": d["Time"]} for d, _ in steps for entry in d["Steps"]]
    sequences = [d["Sequence"] for d in data]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    times = [d["Time"] for d in data]
    assert times == sorted(times) and before <= times[0] and times[-1] <= after
    moves = [(d["Kind"], d.get("Step") or d.get("Transition")) for d in data
             if d["Kind"] in ("step_entered", "step_exited", "transition_fired")]  # fmt: skip
    assert moves == [
        ("step_entered", "Cut"),
        ("transition_fired", "Cut -> Finish"),
        ("step_exited", "Cut"),
        ("step_entered", "Drill"),
        ("step_entered", "Sand"),
        # Drill and Sand finish in either order; the convergence fires once both are done.
        ("transition_fired", "Finish -> Dry"),
        ("step_exited", "Drill"),
        ("step_exited", "Sand"),
        ("step_entered", "Dry"),
        ("step_exited", "Dry"),
    ]
    dispatched = [d["Action"] for d in data if d["Kind"] == "action_dispatched"]
    completed = [d["Action"] for d in data if d["Kind"] == "action_completed"]
    assert dispatched[0] == "cut" and sorted(dispatched) == ["cut", "drill", "dry", "sand"]
    assert sorted(completed) == ["cut", "drill", "dry", "sand"]
    entered = {d["Step"]: d["Time"] for d in data if d["Kind"] == "step_entered"}
    exited = {d["Step"]: d["Time"] for d in data if d["Kind"] == "step_exited"}
    assert all(entered[s] <= exited[s] for s in entered)
    assert exited["Cut"] <= entered["Drill"] == entered["Sand"]
    assert data[-1]["Kind"] == "step_exited" and steps[-1][0]["ActiveSteps"] == []
    assert ["Drill", "Sand"] in [sorted(d["ActiveSteps"]) for d, _ in steps]


async def test_step_events_carry_the_trace_context_of_the_job(config: AppConfig) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with (
        running(config, tracing=Tracing(provider)) as runtime,
        MesClient(config.mqtt.port) as mes,
        simulator(config, scopes=()),
    ):
        station = Station(mes, config.jobs_prefix, runtime)
        events = await station.watch("events")
        await station.configure("workmaster", work_master("WM-T1", scenario_recipe()))
        order = {"JobOrderID": "T1", "WorkMasterID": [{"ID": "WM-T1"}]}
        traceparent = f"00-{trace_id}-b7ad6b7169203331-01"
        await station.call_raw("StoreAndStart", {"JobOrder": order},
                               extra={"traceparent": traceparent})  # fmt: skip
        seen: list[Received] = []
        async with asyncio.timeout(10):
            while not seen or seen[-1].json()["ActiveSteps"] or \
                    seen[-1].json()["Steps"][-1]["Kind"] != "step_exited":  # fmt: skip
                message = await events.get()
                if is_progress(message):
                    seen.append(message)
    assert seen and all(trace_id in m.attributes["traceparent"] for m in seen)
