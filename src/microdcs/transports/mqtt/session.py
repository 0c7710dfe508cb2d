"""The MQTT session of one replica: connect, subscribe, reconnect, and drain on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from microdcs.processing.pipeline import TransportStats
from microdcs.processing.tracker import ResponseTracker
from microdcs.transports.mqtt.client import MqttClient, MqttConnectionError
from microdcs.transports.mqtt.inbox import Inbox
from microdcs.transports.mqtt.options import MqttConfig, client_options
from microdcs.transports.mqtt.outbox import Outbox
from microdcs.transports.mqtt.routing import Router

logger = logging.getLogger("microdcs.transports.mqtt.handler")


class Session:
    """Owns the client: builds it, keeps it connected and subscribed, and ends it."""

    def __init__(
        self,
        mqtt: MqttConfig,
        *,
        instance_id: str,
        response_topic: str,
        router: Router,
        inbox: Inbox,
        outbox: Outbox,
        stats: TransportStats,
        tracker: ResponseTracker,
        workers: int,
        shutdown_grace: float,
        is_processor_instance: bool,
    ) -> None:
        self._mqtt = mqtt
        self._instance_id = instance_id
        self._response_topic = response_topic
        self._router = router
        self._inbox = inbox
        self._outbox = outbox
        self._stats = stats
        self._tracker = tracker
        self._workers = workers
        self._grace = shutdown_grace
        self._processing = is_processor_instance
        self.client: MqttClient | None = None
        self.connected = asyncio.Event()
        #: Called after every (re)connect and subscribe with the CONNACK's Session Present
        #: flag (False: the broker holds nothing of ours, maybe not even retained state).
        self.session_listeners: list[Callable[[bool], None]] = []

    def _make_client(self) -> MqttClient:
        mqtt = self._mqtt
        options = client_options(
            mqtt,
            self._instance_id,
            session_expiry=mqtt.session_expiry,
            receive_maximum=mqtt.receive_maximum,
            publish_attempts=mqtt.publish_attempts,
            # Oversized publishes are cut by the reader and answered with an error.
            max_packet_bytes=mqtt.max_payload_bytes + 65536,
        )
        client = MqttClient(options, self._inbox.on_message)
        client.on_publish_failure = self._stats.fail
        return client

    def _subscriptions(self) -> list[tuple[str, int]]:
        return self._router.subscriptions(
            self._response_topic,
            group=self._mqtt.shared_subscription,
            processing=self._processing,
        )

    async def run(self, shutdown: asyncio.Event) -> None:
        """Connect, serve and reconnect until ``shutdown`` is set, then drain and leave."""
        self.client = self._inbox.client = self._outbox.client = self._make_client()
        async with asyncio.TaskGroup() as tasks:
            workers = [
                tasks.create_task(self._inbox.worker(), name=f"mqtt-worker-{n}")
                for n in range(self._workers)
            ]
            expiry = tasks.create_task(self._tracker.run(), name="mqtt-expiry")
            try:
                await self._connection_loop(self.client, shutdown)
            finally:
                for task in (*workers, expiry):
                    task.cancel()

    async def _connection_loop(self, client: MqttClient, shutdown: asyncio.Event) -> None:
        delay = 0.1
        while not shutdown.is_set():
            try:
                connack = await client.connect()
                await self._subscribe(client)
                self.connected.set()
                delay = 0.1
                for listener in self.session_listeners:
                    listener(connack.session_present)
                logger.info(
                    "connected to %s:%s as %s (session present: %s)",
                    self._mqtt.hostname,
                    self._mqtt.port,
                    self._instance_id,
                    connack.session_present,
                )
                if await self._serve_until_down(client, shutdown):
                    drained = await self._drain(client)
                    self.connected.clear()
                    # A drained replica ends its session: a persistent session left in the
                    # shared group would keep receiving its share of messages while nobody
                    # serves it. Undrained work keeps the session for redelivery.
                    await client.disconnect(end_session=drained)
                    return
                logger.warning("MQTT connection lost; reconnecting")
            except MqttConnectionError as exc:
                logger.warning("MQTT broker unavailable: %s", exc)
            except TimeoutError:
                logger.warning("MQTT subscribe timed out; reconnecting")
            self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), delay)
            delay = min(delay * 2, self._mqtt.reconnect_max_seconds)

    async def _subscribe(self, client: MqttClient) -> None:
        subscriptions = self._subscriptions()
        codes = await client.subscribe(subscriptions)
        refused = [f for (f, _), code in zip(subscriptions, codes, strict=False) if code >= 0x80]
        if refused:
            raise MqttConnectionError(f"subscriptions refused by the broker: {refused}")

    async def _serve_until_down(self, client: MqttClient, shutdown: asyncio.Event) -> bool:
        """Wait for a disconnect (False) or for shutdown (True)."""
        down = asyncio.ensure_future(client.wait_closed())
        stop = asyncio.ensure_future(shutdown.wait())
        try:
            done, _ = await asyncio.wait({down, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (down, stop):
                task.cancel()
            await asyncio.gather(down, stop, return_exceptions=True)
        return stop in done

    async def _drain(self, client: MqttClient) -> bool:
        """Finish what was received (leaving the shared group first if configured).

        True when the session should end: everything drained and leaving is configured.
        """
        grace = self._grace
        leave = self._mqtt.end_session_on_shutdown
        shared = [f for f, _ in self._subscriptions() if f != self._response_topic] if leave else []
        queue = self._inbox.queue
        try:
            async with asyncio.timeout(grace):
                if shared:
                    await client.unsubscribe(shared)
                # Messages the broker had already assigned to us keep arriving for a
                # moment after the UNSUBACK; serve them until the stream is quiet.
                quiet_since = self._stats.received
                while True:
                    await queue.join()
                    await client.wait_acknowledged()
                    await asyncio.sleep(0.1)
                    if self._stats.received == quiet_since and queue.empty():
                        break
                    quiet_since = self._stats.received
        except (TimeoutError, MqttConnectionError) as exc:
            self._inbox.accepting = False
            reason = (
                f"shutdown grace of {grace:.1f}s over"
                if isinstance(exc, TimeoutError)
                else f"broker gone while draining ({exc})"
            )
            logger.warning(
                "%s: %d messages left unacknowledged for redelivery",
                reason,
                queue.unfinished,
            )
            return False
        self._inbox.accepting = False
        return leave
