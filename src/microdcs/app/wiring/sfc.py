"""Wire the engine and the southbound equipment processor into a runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from microdcs.app.application import AdditionalTask
from microdcs.equipment.processor import EquipmentProcessor
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.sfc.engine.control import JobStoreRecipes
from microdcs.sfc.engine.engine import SfcEngine
from microdcs.sfc.engine.store import EngineStore
from microdcs.transports.mqtt.outlets import MqttCommandOutlet
from microdcs.transports.mqtt.topics import TopicLayout

if TYPE_CHECKING:
    from microdcs.app.runner import Runtime


def bind_engine(runtime: Runtime, jobs: JobManagementProcessor) -> SfcEngine:
    """Bind the equipment processor under ``equipment_prefix``; add the engine task."""
    config = runtime.config
    layout = TopicLayout(config.equipment_prefix, config.scope_levels)  # as bind makes it
    outlet = MqttCommandOutlet(runtime.mqtt, layout, runtime.tracing)
    equipment = EquipmentProcessor(outlet, source=config.resolved_source)
    runtime.mqtt.bind(equipment, prefix=layout.prefix)
    engine = SfcEngine(
        EngineStore(runtime.store, maxlen=config.sfc_work_maxlen),
        jobs,
        JobStoreRecipes(jobs.jobs),
        equipment,
        consumer=config.resolved_instance_id,
        claim_idle=config.sfc_claim_idle_seconds,
        timer_poll=config.sfc_timer_poll_seconds,
        resend_after=config.sfc_command_resend_seconds,
        scope_scan=config.sfc_scope_scan_seconds,
        tracing=runtime.tracing,
    )
    jobs.add_listener(engine.on_job_event)
    jobs.recipe_predicates = frozenset(engine.predicates)
    if config.sfc_engine_enabled and config.is_processor_instance:
        runtime.app.add_task(AdditionalTask("sfc-engine", engine.run))
    return engine
