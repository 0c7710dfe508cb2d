"""The MQTT session of one replica: connect, subscribe, reconnect, and drain on shutdown.

Each connection chooses its subscription mode from the CONNACK (see :mod:`.ingress`):
shared subscriptions where the broker offers them and a group is configured, else plain
ones, the request topics then subscribed only while the ingress election says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from microdcs.processing.pipeline import TransportStats
from microdcs.processing.tracker import ResponseTracker
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import MqttClient, MqttConnectionError
from microdcs.transports.mqtt.inbox import Inbox
from microdcs.transports.mqtt.ingress import IngressElection, SubscriptionMode, choose_mode
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
        election: IngressElection | None = None,
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
        self._election = election
        self.client: MqttClient | None = None
        #: How the current (or last) connection subscribes the request topics.
        self.mode: SubscriptionMode | None = None
        #: True while the request topics are subscribed (this replica takes requests).
        self.ingress = False
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

    def _request_filters(self) -> list[str]:
        """The request filters of the current mode (none on a non-processing replica)."""
        if not self._processing:
            return []
        shared = self.mode is SubscriptionMode.SHARED
        return self._router.request_filters(self._mqtt.shared_subscription if shared else None)

    def _choose_mode(self, connack: codec.ConnAck) -> None:
        mode = choose_mode(self._mqtt.shared_subscription, connack, self._election)
        if mode is self.mode:
            return
        self.mode = mode
        if mode is SubscriptionMode.SHARED:
            logger.info("shared subscriptions (group %s)", self._mqtt.shared_subscription)
            return
        why = (
            "the broker offers no shared subscriptions (Shared Subscription Available = 0)"
            if self._mqtt.shared_subscription
            else "APP_MQTT_SHARED_SUBSCRIPTION is empty"
        )
        if mode is SubscriptionMode.PLAIN_ELECTED:
            logger.warning(
                "%s: plain subscriptions; the replica holding the ingress lease subscribes "
                "the request topics, the others stand by",
                why,
            )
        else:
            logger.warning(
                "%s: plain subscriptions without an election; every replica receives "
                "every request: run exactly one processing replica",
                why,
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
                self._choose_mode(connack)
                await self._subscribe(client, connack.session_present)
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
            self.ingress = False
            if self._election is not None:
                self._election.campaign(False)  # held on until it expires: a blip costs none
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), delay)
            delay = min(delay * 2, self._mqtt.reconnect_max_seconds)

    @property
    def _elected(self) -> bool:
        """Plain subscriptions whose request topics follow the election."""
        return self.mode is SubscriptionMode.PLAIN_ELECTED and self._processing

    async def _subscribe(self, client: MqttClient, session_present: bool) -> None:
        requests = self._request_filters()
        if self._elected:
            assert self._election is not None
            # Undecided in time (Redis out of reach): stand by, and follow the election.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._mqtt.ingress_lease_seconds):
                    await self._election.settle()
            if not self._election.leading:
                if session_present:  # it may still hold them from when this replica led
                    await client.unsubscribe(requests)
                requests = []  # subscribed by _follow_election once leading
        await self._subscribe_filters(client, [*requests, self._response_topic])
        self.ingress = bool(requests)

    @staticmethod
    async def _subscribe_filters(client: MqttClient, filters: list[str]) -> None:
        subscriptions = [(f, 1) for f in filters]
        codes = await client.subscribe(subscriptions)
        refused = [f for (f, _), code in zip(subscriptions, codes, strict=False) if code >= 0x80]
        if refused:
            raise MqttConnectionError(f"subscriptions refused by the broker: {refused}")

    async def _follow_election(self, client: MqttClient) -> None:
        """Subscribe the request topics while leading, unsubscribe them when not."""
        election = self._election
        assert election is not None
        filters = self._request_filters()
        election.campaign(True)
        while True:
            if not self.ingress:
                await election.wait_leading(True)
                await self._subscribe_filters(client, filters)
                self.ingress = True
                logger.info("%s takes the requests (ingress lease held)", self._instance_id)
            await election.wait_leading(False)
            self.ingress = False
            logger.warning("%s lost the ingress lease; standing by", self._instance_id)
            await client.unsubscribe(filters)

    async def _serve_until_down(self, client: MqttClient, shutdown: asyncio.Event) -> bool:
        """Wait for a disconnect (False) or for shutdown (True).

        Under an election the request topics follow it meanwhile; a failed (un)subscribe
        there ends the connection like a failed subscribe after connecting.
        """
        down = asyncio.ensure_future(client.wait_closed())
        stop = asyncio.ensure_future(shutdown.wait())
        waiters = {down, stop}
        follow = asyncio.ensure_future(self._follow_election(client)) if self._elected else None
        if follow is not None:
            waiters.add(follow)
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        if follow is not None and follow in done and not follow.cancelled():
            error = follow.exception()
            logger.warning("MQTT (un)subscribe failed (%s); reconnecting", error)
            await client.disconnect()
            return False
        return stop in done

    async def _drain(self, client: MqttClient) -> bool:
        """Finish what was received (leaving the shared group or the ingress lease first).

        True when the session should end: everything drained and leaving is configured.
        """
        grace = self._grace
        leave = self._mqtt.end_session_on_shutdown
        requests = self._request_filters() if self.ingress and leave else []
        queue = self._inbox.queue
        try:
            async with asyncio.timeout(grace):
                if requests:
                    await client.unsubscribe(requests)
                    self.ingress = False
                if self._elected:
                    # Renewed no more. Resigned once the request topics are left, so a
                    # standby takes over at once; else (a session kept to queue requests
                    # while this replica restarts) the lease runs out on its own.
                    assert self._election is not None
                    self._election.campaign(False)
                    if requests:
                        await self._election.resign()
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
