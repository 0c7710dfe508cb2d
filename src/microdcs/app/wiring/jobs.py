"""Wire job management into a runtime: the processor, and the publisher where enabled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from microdcs.app.application import AdditionalTask
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.jobs.storage import JobStore

if TYPE_CHECKING:
    from microdcs.app.runner import Runtime


def bind_jobs(runtime: Runtime) -> JobManagementProcessor:
    """Bind the job processor under ``config.jobs_prefix``; add the publisher task."""
    config = runtime.config
    jobs = JobStore(
        runtime.store,
        retention=config.jobs_response_retention,
        maxlen=config.jobs_changes_maxlen,
    )
    processor = JobManagementProcessor(
        jobs, source=config.resolved_source, id_length=config.limits.id_length
    )
    runtime.bind(processor, prefix=config.jobs_prefix)
    if config.is_publisher_instance:
        from microdcs.publisher.options import PublisherOptions
        from microdcs.publisher.task import JobPublisher
        from microdcs.transports.mqtt.outlets import MqttRetainedOutlet

        options = PublisherOptions(
            prefix=config.jobs_prefix,
            instance_id=config.resolved_instance_id,
            scope_levels=config.scope_levels,
            retained_expiry=config.jobs_retained_expiry,
            lease_seconds=config.publisher_lease_seconds,
            poll_seconds=config.publisher_poll_seconds,
            interval_seconds=config.publisher_interval_seconds,
        )
        outlet = MqttRetainedOutlet(runtime.mqtt)
        publisher = JobPublisher(options, jobs, runtime.store, outlet, processor)
        processor.add_change_listener(publisher.notify)
        runtime.app.add_task(AdditionalTask("jobs-publisher", publisher.run))
        runtime.metrics.observe("microdcs.publisher.lag_seconds", publisher.lag_seconds)
        runtime.metrics.observe("microdcs.publisher.leader", lambda: int(publisher.leading))
        runtime.metrics.observe("microdcs.publisher.skipped", lambda: publisher.skipped)
        runtime.metrics.observe("microdcs.publisher.rebuilds", lambda: publisher.rebuilds)
    return processor
