"""The ingress election: which replica subscribes the request topics without shared ones.

A broker without shared subscriptions gives every subscriber every request. The replicas
then elect one through a Redis lease (the publisher's :class:`Lease`): the holder
subscribes the request topics, the others stand by and take over once it resigns (a
graceful shutdown) or its lease expires (a crash, a lost broker connection, Redis out of
reach for longer than the lease). The holder treats the lease as lost a little before it
expires in Redis, counted from before its last successful renewal, so two replicas
subscribe at once only for the moment an UNSUBSCRIBE takes, and the dedupe registry
answers the duplicates of that moment. Requests published while nobody is subscribed
(between a crash and the takeover) are not delivered: the MES's retry covers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from microdcs.app.application import AdditionalTask
from microdcs.app.telemetry.metrics import Metrics
from microdcs.core.errors import UnavailableError
from microdcs.core.waiting import sleep_unless
from microdcs.publisher.lease import Lease
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.mqtt.ingress import SubscriptionMode

logger = logging.getLogger(__name__)


class IngressLease:
    """An :class:`~microdcs.transports.mqtt.ingress.IngressElection` on a Redis lease.

    Competes only while the MQTT session asks it to (plain subscriptions, connected):
    a replica on a broker with shared subscriptions never touches the key.
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.leading = False
        self._wanted = asyncio.Event()
        self._changed = asyncio.Event()
        #: Set by :meth:`campaign`: the task tries at once instead of ending its pause.
        self._wake = asyncio.Event()
        #: Attempts to hold the lease so far (:meth:`settle` waits for the next one).
        self._attempts = 0
        #: Monotonic time until which the lease is surely ours (the key expires later).
        self._until = 0.0
        #: Given up a little before the key expires, to leave time for the UNSUBSCRIBE.
        self._margin = min(1.0, lease.seconds / 5)
        #: Stands down at ``_until`` even while a renewal hangs (Redis frozen, say).
        self._watchdog: asyncio.TimerHandle | None = None

    # -- the session's side ---------------------------------------------------------------
    def campaign(self, active: bool) -> None:
        if active:
            if not self._wanted.is_set():
                self._wanted.set()
                self._wake.set()
        else:
            self._wanted.clear()
        self._changed.set()

    async def settle(self) -> None:
        self.campaign(True)
        if self.leading:
            return
        seen = self._attempts
        self._wake.set()
        while self._attempts == seen:
            self._changed.clear()
            await self._changed.wait()

    async def wait_leading(self, leading: bool) -> None:
        while self.leading != leading:
            self._changed.clear()
            await self._changed.wait()

    async def resign(self) -> None:
        was = self.leading
        self._set_leading(False)
        if was:
            with contextlib.suppress(UnavailableError):  # then it expires on its own
                await self.lease.release()

    # -- the task -------------------------------------------------------------------------
    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            if not leading:
                self._until = 0.0
                if self._watchdog is not None:
                    self._watchdog.cancel()
                    self._watchdog = None
        self._changed.set()

    def _renewed(self, sent: float) -> None:
        """The lease is ours until ``sent`` plus its time (less the margin): lead till then."""
        self._until = sent + self.lease.seconds - self._margin
        if self._watchdog is not None:
            self._watchdog.cancel()
        loop = asyncio.get_running_loop()
        # time.monotonic() is the loop's clock on Linux; convert anyway.
        at = loop.time() + (self._until - time.monotonic())
        self._watchdog = loop.call_at(at, self._expired)
        if not self.leading:
            logger.info("%s holds the ingress lease", self.lease.holder)
        self._set_leading(True)

    def _expired(self) -> None:
        self._watchdog = None
        if self.leading and time.monotonic() >= self._until:
            logger.warning("%s: ingress lease not renewed in time", self.lease.holder)
            self._set_leading(False)

    async def run(self, shutdown: asyncio.Event) -> None:
        """Renew while campaigning, stand by otherwise, until ``shutdown``.

        At shutdown the lease is left to the session (it resigns after leaving the
        request topics) or to its expiry.
        """
        renew = self.lease.seconds / 3
        standby = max(0.05, self.lease.seconds / 10)
        while not shutdown.is_set():
            if not self._wanted.is_set():
                await self._idle(shutdown)
                continue
            self._wake.clear()
            sent = time.monotonic()
            try:
                held: bool | None = await self.lease.hold()
            except UnavailableError as exc:
                logger.warning("ingress lease not renewed: %s", exc)
                held = None
            self._attempts += 1
            if held:
                self._renewed(sent)
            elif held is False or time.monotonic() >= self._until:
                self._set_leading(False)
            self._changed.set()
            delay = renew if self.leading else standby
            if self.leading:
                delay = max(0.0, min(delay, self._until - time.monotonic()))
            await self._pause(shutdown, delay)

    async def _idle(self, shutdown: asyncio.Event) -> None:
        """Not campaigning: keep the role only until the lease runs out, then wait."""
        timeout = max(0.0, self._until - time.monotonic()) if self.leading else None
        await self._pause(shutdown, timeout)
        if not self._wanted.is_set() and time.monotonic() >= self._until:
            self._set_leading(False)

    async def _pause(self, shutdown: asyncio.Event, seconds: float | None) -> None:
        """Until ``seconds`` passed, :meth:`campaign` asked for an attempt, or shutdown."""
        await sleep_unless(seconds, self._wake, shutdown)


def ingress_lease(store: RedisStore, instance_id: str, seconds: float) -> IngressLease:
    """The election of the replicas sharing ``store``'s key prefix."""
    return IngressLease(Lease(store, store.key("mqtt", "ingress", "lease"), instance_id, seconds))


def ingress_task(election: IngressLease) -> AdditionalTask:
    return AdditionalTask("mqtt-ingress", election.run)


def observe_ingress(metrics: Metrics, mqtt: MqttHandler) -> None:
    """Export the subscription mode and whether this replica takes the requests."""
    metrics.observe(
        "microdcs.mqtt.shared_subscriptions",
        lambda: int(mqtt.subscription_mode is SubscriptionMode.SHARED),
    )
    metrics.observe("microdcs.mqtt.ingress", lambda: int(mqtt.takes_requests))
