"""Wire job management: the job store and processor, and the publisher where enabled."""

from __future__ import annotations

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.telemetry.metrics import Metrics
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.jobs.stationconfig import RecipeValidator
from microdcs.jobs.storage import JobStore
from microdcs.publisher.options import PublisherOptions
from microdcs.publisher.task import JobPublisher
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.outlets import MqttRetainedOutlet


def wire_jobs(
    config: AppConfig,
    store: RedisStore,
    mqtt: MqttHandler,
    binder: Binder,
    metrics: Metrics,
    recipe_validator: RecipeValidator,
) -> JobManagementProcessor:
    """Bind the job processor under ``config.jobs_prefix``; add the publisher task."""
    jobs = JobStore(
        store,
        retention=config.jobs_response_retention,
        maxlen=config.jobs_changes_maxlen,
        max_jobs=config.jobs_max_downloadable,
        close_after=config.jobs_close_after_seconds,
    )
    processor = JobManagementProcessor(
        jobs,
        source=config.resolved_source,
        id_length=config.limits.id_length,
        recipe_validator=recipe_validator,
        dispatch_poll=config.jobs_dispatch_poll_seconds,
    )
    binder.bind(processor, prefix=config.jobs_prefix)
    if config.is_processor_instance and processor.start_policy is processor.dispatcher:
        # StartTimes, Close times and slots freed by other replicas.
        binder.add_task("jobs-dispatcher", processor.dispatcher.run)
    if config.is_publisher_instance:
        options = PublisherOptions(
            prefix=config.jobs_prefix,
            instance_id=config.resolved_instance_id,
            scope_levels=config.scope_levels,
            retained_expiry=config.jobs_retained_expiry,
            lease_seconds=config.publisher_lease_seconds,
            poll_seconds=config.publisher_poll_seconds,
            interval_seconds=config.publisher_interval_seconds,
            index_entries_per_second=config.publisher_index_entries_per_second,
        )
        publisher = JobPublisher(options, jobs, store, MqttRetainedOutlet(mqtt))
        processor.add_change_listener(publisher.notify)
        binder.add_task("jobs-publisher", publisher.run)
        metrics.observe("microdcs.publisher.lag_seconds", publisher.lag_seconds)
        metrics.observe("microdcs.publisher.leader", lambda: int(publisher.leading))
        metrics.observe("microdcs.publisher.skipped", lambda: publisher.skipped)
        metrics.observe("microdcs.publisher.rebuilds", lambda: publisher.rebuilds)
    return processor
