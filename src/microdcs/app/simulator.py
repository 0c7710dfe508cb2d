"""``microdcs simulate-equipment``: a piece of equipment that speaks only MQTT.

It answers each command after a delay, fails a configurable share of them, emits
configured events periodically, and recognises a re-delivered command by its correlation
id: the command takes effect once, a re-delivery only gets the stored answer again. It
reports how often each correlation id took effect, over MQTT (a ``REPORT_TYPE`` request)
and in a JSON file at exit, which is how tests prove that nothing ran twice.

Like equipment following the contract, it echoes a command's W3C trace context
(``traceparent``/``tracestate``) on the answer, so the answer joins the command's trace.
Its periodic events carry the context of the last command received on their scope (the
activity they stand for), or none before the first command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from microdcs.app.config import MqttConfig
from microdcs.core.cloudevent import (
    CAUSATION_ID,
    CORRELATION_ID,
    ERROR_KIND,
    ERROR_MESSAGE,
    TRACEPARENT,
    TRACESTATE,
    CloudEvent,
    now_timestamp,
)
from microdcs.core.contenttypes import JSON
from microdcs.core.errors import InputError
from microdcs.equipment.contract import CANCEL_TYPE, EQUIPMENT_ERROR, decode_data
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import MqttClient, MqttConnectionError
from microdcs.transports.mqtt.mapping import MqttEnvelope, encode_properties, from_mqtt, to_binary
from microdcs.transports.mqtt.options import client_options
from microdcs.transports.mqtt.topics import TopicLayout

logger = logging.getLogger(__name__)

#: Request (with a Response Topic) for the simulator's report: effects per correlation id.
REPORT_TYPE = "com.github.aschamberger.microdcs.simulator.report.v1"


@dataclass(frozen=True, slots=True)
class Emission:
    """Emit an event of ``type`` every ``interval`` seconds on each known scope."""

    type: str
    interval: float

    @classmethod
    def parse(cls, text: str) -> Emission:
        """``TYPE:SECONDS``, e.g. ``com.example.dried:0.5``."""
        type_, _, seconds = text.rpartition(":")
        if not type_ or not seconds:
            raise ValueError(f"expected TYPE:SECONDS, got {text!r}")
        interval = float(seconds)
        if interval <= 0:
            raise ValueError(f"interval must be > 0 in {text!r}")
        return cls(type_, interval)


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    #: Broker of an anonymous plain-TCP connection, used only when ``mqtt`` is unset.
    host: str = "127.0.0.1"
    port: int = 1883
    #: The runtime's broker settings (``APP_MQTT_*``: address, user name and password,
    #: TLS, keep-alive), so the simulator logs in to a secured broker like the runtime.
    mqtt: MqttConfig | None = None
    prefix: str = "app/equipment"
    scope_levels: int = 3
    #: Seconds from a command to its answer (a command's ``DelayMs`` parameter overrides).
    delay: float = 0.1
    #: Share of commands answered with an error (a ``Fail: true`` parameter always fails).
    fail_ratio: float = 0.0
    scopes: tuple[str, ...] = ()
    emissions: tuple[Emission, ...] = ()
    seed: int | None = None
    client_id: str = field(default_factory=lambda: f"equipment-sim-{uuid.uuid4().hex[:8]}")
    report_file: Path | None = None

    @property
    def broker(self) -> MqttConfig:
        """The connection settings: ``mqtt``, or an anonymous one to ``host:port``."""
        return self.mqtt or MqttConfig(hostname=self.host, port=self.port)


class EquipmentSimulator:
    """``await EquipmentSimulator(settings).run(stop)``; counters readable at any time."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.layout = TopicLayout(settings.prefix, settings.scope_levels)
        self.source = f"simulator/{settings.client_id}"
        #: How many times each correlation id took effect (more than 1 is a bug upstream).
        self.effects: Counter[str] = Counter()
        #: How many times each correlation id was received (re-deliveries included).
        self.received: Counter[str] = Counter()
        self.cancelled: set[str] = set()
        #: (correlation id, traceparent or "") of every command received, in order.
        self.command_traces: list[tuple[str, str]] = []
        #: Trace context of the last command per scope, carried by the periodic events.
        self._scope_traces: dict[str | None, dict[str, Any]] = {}
        self.scopes: set[str | None] = set(settings.scopes)
        self._answers: dict[str, tuple[str, MqttEnvelope]] = {}
        self._random = random.Random(settings.seed)
        self._client: MqttClient | None = None
        self._emitted = 0
        self.connected = asyncio.Event()

    def report(self) -> dict[str, Any]:
        return {
            "effects": dict(self.effects),
            "received": dict(self.received),
            "cancelled": sorted(self.cancelled),
            "emitted": self._emitted,
        }

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        options = client_options(
            self.settings.broker, self.settings.client_id, clean_start=True, receive_maximum=1024
        )
        self._client = client = MqttClient(options, self._on_message)
        try:
            async with asyncio.TaskGroup() as group:
                for emission in self.settings.emissions:
                    group.create_task(self._emit_loop(emission, stop))
                await self._connection_loop(client, stop)
        finally:
            if self.settings.report_file is not None:
                self.settings.report_file.write_bytes(orjson.dumps(self.report()))

    async def _connection_loop(self, client: MqttClient, stop: asyncio.Event) -> None:
        filters = [(f, 1) for f in self.layout.filters((Intent.COMMANDS,), None)]
        while not stop.is_set():
            try:
                await client.connect()
                await client.subscribe(filters)
                self.connected.set()
                logger.info("equipment simulator connected as %s", self.settings.client_id)
                closed = asyncio.ensure_future(client.wait_closed())
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
                closed.cancel()
                stopping.cancel()
                if stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(2):
                            await client.wait_acknowledged()
                    await client.disconnect(end_session=True)
                    return
            except (MqttConnectionError, TimeoutError) as exc:
                logger.warning("equipment simulator: broker unavailable: %s", exc)
            self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    # -- commands ---------------------------------------------------------------------------
    def _on_message(self, message: codec.Publish) -> None:
        client = self._client
        assert client is not None
        if message.qos > 0:
            client.ack(message.packet_id, client.epoch)
        parsed = self.layout.parse(message.topic)
        if parsed is None or message.payload is None:
            return
        try:
            event = from_mqtt(message.payload, message.content_type, message.user_properties, None)
        except InputError as exc:
            logger.warning("not a CloudEvent on %s: %s", message.topic, exc)
            return
        subject = event.subject or parsed[0]
        reply_to = message.response_topic or self.layout.topic(subject, Intent.EVENTS)
        if event.type == REPORT_TYPE:
            answer = self._event(event.type + ".response", subject, self.report(), cause=event)
            self._publish(reply_to, answer, message.correlation_data)
            return
        correlation = event.correlationid or (message.correlation_data or b"").decode(
            "utf-8", "replace"
        )
        if not correlation:
            logger.warning("command %s without correlation id ignored", event.type)
            return
        trace = _trace_context(event)
        self.command_traces.append((correlation, str(trace.get(TRACEPARENT, ""))))
        if trace:
            self._scope_traces[subject] = trace
        if event.type == CANCEL_TYPE:
            self.cancelled.add(correlation)
            return
        self.scopes.add(subject)
        self.received[correlation] += 1
        if correlation in self.effects:
            stored = self._answers.get(correlation)
            if stored is not None:  # re-delivered after the answer: answer again, no effect
                self._send(*stored)
            return
        self.effects[correlation] += 1
        params = decode_data(event.data, event.datacontenttype)
        params = params if isinstance(params, dict) else {}
        delay = float(params.get("DelayMs", self.settings.delay * 1000)) / 1000
        fail = bool(params.get("Fail")) or self._random.random() < self.settings.fail_ratio
        answer = self._answer(event, subject, params, fail)
        envelope = to_binary(answer)
        envelope.correlation_data = message.correlation_data or correlation.encode()
        loop = asyncio.get_running_loop()
        if delay <= 0:
            self._deliver(correlation, reply_to, envelope)
        else:
            loop.call_later(delay, self._deliver, correlation, reply_to, envelope)

    def _answer(
        self, command: CloudEvent, subject: str | None, params: dict[str, Any], fail: bool
    ) -> CloudEvent:
        result = params.get("Result")
        data = dict(result) if isinstance(result, dict) else {"Done": True}
        answer = self._event(command.type + ".response", subject, data, cause=command)
        if fail:
            answer.extensions[ERROR_KIND] = EQUIPMENT_ERROR
            answer.extensions[ERROR_MESSAGE] = f"simulated failure of {command.type}"
        return answer

    def _deliver(self, correlation: str, topic: str, envelope: MqttEnvelope) -> None:
        self._answers[correlation] = (topic, envelope)
        self._send(topic, envelope)

    def _event(
        self,
        type_: str,
        subject: str | None,
        data: Any,
        *,
        cause: CloudEvent | None = None,
        trace: dict[str, Any] | None = None,
    ) -> CloudEvent:
        """An event; an answer to ``cause`` echoes its correlation and trace context."""
        extensions: dict[str, Any] = dict(trace or {})
        if cause is not None:
            extensions[CORRELATION_ID] = cause.correlationid or cause.id
            extensions[CAUSATION_ID] = cause.id
            extensions.update(_trace_context(cause))
        return CloudEvent(
            type=type_,
            source=self.source,
            subject=subject,
            time=now_timestamp(),
            datacontenttype=JSON,
            data=orjson.dumps(data),
            extensions=extensions,
        )

    def _publish(self, topic: str, event: CloudEvent, correlation_data: bytes | None) -> None:
        envelope = to_binary(event)
        envelope.correlation_data = correlation_data
        self._send(topic, envelope)

    def _send(self, topic: str, envelope: MqttEnvelope) -> None:
        client = self._client
        if client is None:
            return
        client.publish(topic, envelope.payload, encode_properties(envelope), qos=1)

    # -- events -----------------------------------------------------------------------------
    async def _emit_loop(self, emission: Emission, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), emission.interval)
            if stop.is_set() or self._client is None or not self._client.connected:
                continue
            for scope in sorted(self.scopes, key=lambda s: s or ""):
                self._emitted += 1
                trace = self._scope_traces.get(scope)
                event = self._event(emission.type, scope, {"Seq": self._emitted}, trace=trace)
                self._publish(self.layout.topic(scope, Intent.EVENTS), event, None)


def _trace_context(event: CloudEvent) -> dict[str, Any]:
    """The W3C trace context extensions of ``event`` (empty when it has none)."""
    return {k: event.extensions[k] for k in (TRACEPARENT, TRACESTATE) if k in event.extensions}
