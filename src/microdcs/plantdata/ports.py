"""What plant data needs from the outside, declared here; the app hands in the MQTT one."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol


class RetainedOutlet(Protocol):
    """Retained messages on the broker (the subset of the publisher's outlet used here)."""

    def publish_nowait(self, topic: str, payload: bytes, *, expiry: int | None) -> Awaitable[None]:
        """Queue retained ``payload`` (QoS 1); what it returns completes on the broker's
        acknowledgement."""
        ...

    def delete_nowait(self, topic: str) -> Awaitable[None]:
        """Queue the removal of the retained message on ``topic``."""
        ...
