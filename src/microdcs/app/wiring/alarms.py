"""Wire the alarm runtime: the manager (a tag change listener of plant data), its
processor, the timer task, the retained alarm list and the KPI metrics."""

from __future__ import annotations

from collections.abc import Callable

from microdcs.alarms.kpi_task import KpiTask
from microdcs.alarms.kpis import KpiFigures
from microdcs.alarms.manager import AlarmManager
from microdcs.alarms.options import AlarmsConfig
from microdcs.alarms.processor import AlarmProcessor
from microdcs.alarms.retained import AlarmListPublisher
from microdcs.alarms.startup_file import AlarmFileLoader, read_alarm_file
from microdcs.alarms.store import AlarmStore
from microdcs.alarms.timers import AlarmTimers
from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.telemetry.metrics import Metrics
from microdcs.jobs.contract import subject_of_scope
from microdcs.plantdata.contract import TagChangeListener
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.outlets import MqttRetainedOutlet
from microdcs.transports.mqtt.topics import TopicLayout


def wire_alarms(
    config: AppConfig,
    store: RedisStore,
    mqtt: MqttHandler,
    binder: Binder,
    metrics: Metrics,
    add_listener: Callable[[TagChangeListener], None] | None,
) -> AlarmManager:
    """Bind the alarm processor under ``APP_ALARMS_TOPIC_PREFIX``; register the manager
    with plant data (``add_listener``); add the timer and list tasks where processing runs.
    """
    options = config.alarms
    alarm_store = AlarmStore(store, journal_maxlen=options.journal_maxlen)
    manager = AlarmManager(alarm_store, refresh=options.definitions_refresh_seconds)
    processor = AlarmProcessor(manager, source=config.resolved_source)
    manager.events = processor
    layout = TopicLayout(options.topic_prefix, config.scope_levels)  # as bind makes it
    publisher = AlarmListPublisher(
        MqttRetainedOutlet(mqtt),
        lambda scope: layout.scoped(subject_of_scope(scope), "alarms"),
        manager.snapshot,
        alarm_store.seq,
        interval=options.publish_interval_seconds,
    )
    manager.on_change = publisher.changed
    timers = AlarmTimers(
        alarm_store,
        manager.fire,
        rescan=options.timer_rescan_seconds,
        lease=options.timer_lease_seconds,
    )
    manager.on_timer = timers.wake
    if not options.enabled:
        return manager
    binder.bind(processor, prefix=options.topic_prefix)
    if options.file is not None:
        loader = AlarmFileLoader(alarm_store, read_alarm_file(options.file))
        binder.add_task("alarm-file", loader.run)
    if add_listener is not None:
        add_listener(manager)
    if config.is_processor_instance:
        binder.add_task("alarm-timers", timers.run)
    binder.add_task("alarm-list", publisher.run)
    metrics.observe("microdcs.alarms.transitions", lambda: manager.transitions)
    metrics.observe("microdcs.alarms.conflicts", lambda: manager.conflicts)
    metrics.observe("microdcs.alarms.timers_fired", lambda: timers.fired)
    observe_kpis(metrics, add_kpi_task(binder, manager, alarm_store, options))
    return manager


def add_kpi_task(
    binder: Binder, manager: AlarmManager, alarm_store: AlarmStore, options: AlarmsConfig
) -> KpiTask:
    """Every replica follows the journals (so any replica's scrape has the figures)."""
    task = KpiTask(
        manager.journal_reader,
        manager.alarms,
        alarm_store.scopes,
        interval=options.kpi_interval_seconds,
        window=options.kpi_window_seconds,
    )
    binder.add_task("alarm-kpis", task.run)
    return task


def observe_kpis(metrics: Metrics, kpis: KpiTask) -> None:
    """The ISA-18.2 figures per scope, as the gauges docs/operations.md lists."""
    gauges: dict[str, Callable[[KpiFigures], float]] = {
        "microdcs.alarms.rate": lambda f: f.rate,
        "microdcs.alarms.flood_percent": lambda f: f.flood_percent,
        "microdcs.alarms.standing": lambda f: f.standing,
        "microdcs.alarms.stale": lambda f: f.stale,
        "microdcs.alarms.chattering": lambda f: f.chattering,
        "microdcs.alarms.shelved": lambda f: f.shelved,
        "microdcs.alarms.out_of_service": lambda f: f.out_of_service,
    }
    for name, pick in gauges.items():
        metrics.observe_many(name, lambda pick=pick: kpis.reading(pick))  # type: ignore[misc]
    metrics.observe_many("microdcs.alarms.frequent", kpis.frequent)
