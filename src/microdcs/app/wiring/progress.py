"""Where the SFC engine's step progress goes: the job's scope ``events`` topic, and the
job's retained ``steps/{job}`` topic beside ``order/`` and ``result/``.

Published straight into the MQTT outbox rather than through the job processor's binding
so that the events can go at QoS 0 (``APP_SFC_STEP_EVENTS_QOS``): no PUBACK from the
broker, and none from each subscriber either (they get at most the publish QoS). That
halves the packets a step costs the broker and an MES; the status events and the retained
step state, which an MES must not miss, stay at QoS 1.

The retained step state is a state, not a stream: a job that moves through several steps
within ``APP_SFC_STEP_STATE_INTERVAL_SECONDS`` has only its latest state published at the
end of that interval (the events carry every step). The state of a job that left its
last step (the topic's removal) goes out at once, replacing any state still waiting, so
a replica that stops right after a job ended never leaves a stale state behind.
"""

from __future__ import annotations

import asyncio
import logging

from microdcs.core.cloudevent import TRACEPARENT, TRACESTATE, ExtensionValue
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.processing.routing import Intent
from microdcs.sfc.engine.progress import StepState
from microdcs.sfc.engine.tracecontext import Carried
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.mapping import to_binary
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs_models.sfc_step_event import SfcProgressEvent

logger = logging.getLogger(__name__)


class JobProgress:
    """Step progress events as the job processor's events: same ``events`` topic as the
    job's status events, ``correlationid`` = the job, the step's trace context."""

    def __init__(
        self,
        jobs: JobManagementProcessor,
        mqtt: MqttHandler,
        layout: TopicLayout,
        *,
        qos: int = 0,
        retained_expiry: int | None = None,
        state_interval: float = 0.1,
    ) -> None:
        self.jobs = jobs
        self.mqtt = mqtt
        self.layout = layout  # the job processor's: its events topic, its retained topics
        self.qos = qos
        self.retained_expiry = retained_expiry
        self.state_interval = state_interval
        self.published = 0
        self.lost_states = 0
        self.coalesced_states = 0
        #: topic -> the latest step state not yet published; flushed by one timer handle.
        self._pending: dict[str, StepState] = {}
        self._flush: asyncio.TimerHandle | None = None

    async def progress(self, subject: str | None, event: SfcProgressEvent, trace: Carried) -> None:
        extensions: dict[str, ExtensionValue] | None = None
        if trace:
            extensions = {TRACEPARENT: trace.traceparent}
            if trace.tracestate:
                extensions[TRACESTATE] = trace.tracestate
        cloudevent = self.jobs.build_event(
            event, subject=subject, correlationid=event.job_order_id, extensions=extensions
        )
        client = self.mqtt.client
        if not client.writable:
            await client.wait_writable()
        topic = self.layout.topic(subject, Intent.EVENTS)
        self.mqtt.outbox.send(topic, to_binary(cloudevent), qos=self.qos)
        self.published += 1

    async def step_state(self, subject: str | None, state: StepState) -> None:
        """Retained ``{prefix}/{scope}/steps/{job}``: the active steps; removed once none
        is active (the recipe ended: ``order/`` and ``result/`` say how)."""
        topic = self.steps_topic(subject, state.job_id)
        if not state.active:
            self._pending.pop(topic, None)
            self.mqtt.delete_retained_nowait(topic).add_done_callback(self._settled)
            return
        if self.state_interval <= 0:
            self._publish_state(topic, state)
            return
        if self._pending.get(topic) is not None:
            self.coalesced_states += 1
        self._pending[topic] = state
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(self.state_interval, self._publish_pending)

    def _publish_pending(self) -> None:
        self._flush = None
        pending, self._pending = self._pending, {}
        for topic, state in pending.items():
            self._publish_state(topic, state)

    def _publish_state(self, topic: str, state: StepState) -> None:
        done = self.mqtt.publish_retained_nowait(
            topic, state.payload(), expiry=self.retained_expiry
        )
        done.add_done_callback(self._settled)

    def steps_topic(self, subject: str | None, job_id: str) -> str:
        return f"{self.layout.topic(subject, Intent.EVENTS).rpartition('/')[0]}/steps/{job_id}"

    def _settled(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            self.lost_states += 1
            logger.debug("retained step state not published: %s", done.exception())
