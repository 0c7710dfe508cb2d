"""Shared or plain subscriptions, and who takes the requests when they cannot be shared.

With a shared subscription (``$share/{group}/...``) the broker hands each request to one
replica of the group. A broker may not offer them (CONNACK Shared Subscription Available
= 0, e.g. ejabberd), and an empty ``APP_MQTT_SHARED_SUBSCRIPTION`` asks for plain ones.
With plain subscriptions every subscriber gets every request, so only one replica at a
time subscribes the request topics: the one an :class:`IngressElection` lets lead (the
app implements it with a Redis lease). The others stay connected, answer their own
response topics and stand by. Without an election every replica subscribes: right for a
single replica only, which the session logs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from microdcs.transports.mqtt import codec

#: CONNACK property 0x2A (MQTT v5 section 3.2.2.3.16); absent means available.
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


class SubscriptionMode(StrEnum):
    """How the replica subscribes the request topics on the current connection."""

    SHARED = "shared"  # $share/{group}/...: the broker spreads the requests
    PLAIN_ELECTED = "plain-elected"  # plain, while this replica holds the ingress lease
    PLAIN = "plain"  # plain, unconditionally: one replica only


class IngressElection(Protocol):
    """Whether this replica may subscribe the request topics now (plain subscriptions)."""

    @property
    def leading(self) -> bool:
        """True while this replica holds the role."""
        ...

    def campaign(self, active: bool) -> None:
        """Compete for the role (True), or stop renewing it (False: it expires in time)."""
        ...

    async def settle(self) -> None:
        """Compete, and return once the role is decided (held, or held by another).

        Called before the replica reports itself connected, so a replica that will
        take the requests has subscribed them by then.
        """
        ...

    async def wait_leading(self, leading: bool) -> None:
        """Return once :attr:`leading` equals ``leading``."""
        ...

    async def resign(self) -> None:
        """Give the role up at once, so a standby takes over without waiting for expiry."""
        ...


def shared_available(connack: codec.ConnAck) -> bool:
    """The broker's Shared Subscription Available flag (absent: available)."""
    return connack.properties.get(SHARED_SUBSCRIPTION_AVAILABLE, 1) != 0


def choose_mode(
    group: str, connack: codec.ConnAck, election: IngressElection | None
) -> SubscriptionMode:
    """Shared when configured and offered; else plain, elected if an election is given."""
    if group and shared_available(connack):
        return SubscriptionMode.SHARED
    return SubscriptionMode.PLAIN if election is None else SubscriptionMode.PLAIN_ELECTED
