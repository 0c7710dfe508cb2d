"""Wire plant data: the current value table, its processor, the stale timers, the
retained cvt topics and the tag file; the table is what the SFC engine reads and what
the alarm manager and the SFC tag watch listen to."""

from __future__ import annotations

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.telemetry.metrics import Metrics
from microdcs.jobs.contract import subject_of_scope
from microdcs.plantdata.processor import PlantDataProcessor
from microdcs.plantdata.retained import CvtPublisher
from microdcs.plantdata.stale import StaleTimers
from microdcs.plantdata.startup_file import TagFileLoader, read_tag_file
from microdcs.plantdata.store import PlantDataStore
from microdcs.plantdata.table import CurrentValueTable
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.outlets import MqttRetainedOutlet
from microdcs.transports.mqtt.topics import TopicLayout


def wire_plantdata(
    config: AppConfig, store: RedisStore, mqtt: MqttHandler, binder: Binder, metrics: Metrics
) -> CurrentValueTable:
    """Bind the plant data processor under ``APP_PLANT_TOPIC_PREFIX`` (MQTT and RPC); add
    the stale and cvt tasks. The returned table is a ``TagReader``; its ``add_listener``
    registers a ``TagChangeListener``."""
    options = config.plantdata
    table = CurrentValueTable(PlantDataStore(store))
    if not options.enabled:
        return table
    # Parsed before the runtime connects: a bad file stops the start.
    scopes = read_tag_file(options.tags_file) if options.tags_file is not None else None
    binder.bind(
        PlantDataProcessor(table, source=config.resolved_source), prefix=options.topic_prefix
    )
    layout = TopicLayout(options.topic_prefix, config.scope_levels)  # as bind makes it
    publisher = CvtPublisher(
        MqttRetainedOutlet(mqtt),
        lambda scope, tag: layout.scoped(subject_of_scope(scope), "cvt", tag),
        table.read,
        interval=options.cvt_publish_interval_seconds,
    )
    table.on_change = publisher.changed
    table.on_delete = publisher.removed
    binder.add_task("plant-cvt", publisher.run)
    if config.is_processor_instance:
        timers = StaleTimers(table, rescan=options.stale_rescan_seconds)
        table.on_deadline = timers.deadline_set
        binder.add_task("plant-stale", timers.run)
    if scopes is not None:
        binder.add_task("plant-tag-file", TagFileLoader(table.store, scopes).run)
    metrics.observe("microdcs.plant.samples_stored", lambda: table.stored)
    metrics.observe("microdcs.plant.samples_rejected", lambda: table.rejected)
    metrics.observe("microdcs.plant.samples_stale", lambda: table.stale)
    metrics.observe("microdcs.plant.cvt_published", lambda: publisher.published)
    return table
