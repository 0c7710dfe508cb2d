"""Wire the SFC engine and the southbound equipment processor it commands."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.telemetry.metrics import Metrics
from microdcs.app.wiring.progress import JobProgress
from microdcs.core.tracing import Tracing
from microdcs.equipment.processor import EquipmentProcessor
from microdcs.equipment.sidecar import SidecarEquipment
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.jobs.recipes import JobStoreRecipes
from microdcs.jobs.stationconfig import StoredEquipmentBindings
from microdcs.plantdata.contract import TagChangeListener
from microdcs.sfc import Predicate
from microdcs.sfc.engine.engine import SfcEngine
from microdcs.sfc.engine.equipment_map import EquipmentMap
from microdcs.sfc.engine.ports import TagValues
from microdcs.sfc.engine.store import EngineStore
from microdcs.sfc.engine.tagwatch import TagWatch
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.outlets import MqttCommandOutlet
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs.transports.msgpack_rpc.server import MessagePackRpcHandler
from microdcs.transports.msgpack_rpc.sidecars import SidecarChannel


def wire_engine(
    config: AppConfig,
    store: RedisStore,
    mqtt: MqttHandler,
    jobs: JobManagementProcessor,
    binder: Binder,
    metrics: Metrics,
    predicates: Mapping[str, Predicate],
    tracing: Tracing,
    rpc: MessagePackRpcHandler | None = None,
    tags: TagValues | None = None,
    add_tag_listener: Callable[[TagChangeListener], None] | None = None,
) -> SfcEngine:
    """Bind the equipment processor under ``equipment_prefix`` (MQTT only: equipment is
    on the broker); add the engine task where the engine runs.

    ``tags`` (the plant data reader) serves conditions on tag values; the tag watch is
    registered through ``add_tag_listener`` on every replica, engine or not: the replica
    that stores a change queues the re-evaluation of the executions waiting on it."""
    layout = TopicLayout(config.equipment_prefix, config.scope_levels)  # as bind makes it
    equipment = EquipmentProcessor(
        MqttCommandOutlet(mqtt, layout, tracing), source=config.resolved_source
    )
    binder.bind(equipment, prefix=layout.prefix, rpc=False)
    sidecars: SidecarEquipment | None = None
    if rpc is not None:  # equipment behind sidecars: commands to them, their answers back
        channel = SidecarChannel(rpc)
        sidecars = SidecarEquipment(channel, source=config.resolved_source)
        channel.on_event(sidecars.on_event)
    ports = EquipmentMap(
        equipment,
        by_prefix={layout.prefix: equipment, **binder.equipment_processors},
        by_id=binder.equipment_ports,
        sidecar=sidecars.port if sidecars is not None else None,
        bindings=StoredEquipmentBindings(jobs.jobs),
    )
    progress = None
    if config.sfc_step_events:
        progress = JobProgress(
            jobs,
            mqtt,
            TopicLayout(config.jobs_prefix, config.scope_levels),
            qos=config.sfc_step_events_qos,
            retained_expiry=config.jobs_retained_expiry,
            state_interval=config.sfc_step_state_interval_seconds,
        )
    engine = SfcEngine(
        EngineStore(store, maxlen=config.sfc_work_maxlen),
        jobs,
        JobStoreRecipes(jobs.jobs),
        ports,
        consumer=config.resolved_instance_id,
        claim_idle=config.sfc_claim_idle_seconds,
        timer_poll=config.sfc_timer_poll_seconds,
        resend_after=config.sfc_command_resend_seconds,
        scope_scan=config.sfc_scope_scan_seconds,
        predicates=predicates,
        tracing=tracing,
        progress=progress,
        tags=tags,
    )
    jobs.add_listener(engine.on_job_event)
    if add_tag_listener is not None:
        watch = TagWatch(store, maxlen=config.sfc_work_maxlen)
        add_tag_listener(watch)
        metrics.observe("microdcs.sfc.tag_reevaluations", lambda: watch.queued)
    if config.sfc_engine_enabled and config.is_processor_instance:
        binder.add_task("sfc-engine", engine.run)
    metrics.observe("microdcs.sfc.steps_fired", lambda: engine.steps)
    metrics.observe("microdcs.sfc.active_executions", lambda: engine.active_executions)
    return engine
