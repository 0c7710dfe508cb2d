"""ResponseTracker: awaited requests are matched once or expire once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from microdcs.core.cloudevent import CloudEvent
from microdcs.processing.processor import CloudEventProcessor
from microdcs.processing.tracker import ResponseTracker

TTL = 0.02
SETTLE = 0.15  # comfortably longer than TTL


class Recorder(CloudEventProcessor):
    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.expired: list[CloudEvent] = []
        self.fail = fail

    async def on_expired(self, request: CloudEvent) -> None:
        self.expired.append(request)
        if self.fail:
            raise RuntimeError("hook failed")


def req(n: int = 1) -> CloudEvent:
    return CloudEvent(type="t", source="s", id=f"r{n}")


@pytest.fixture
async def tracker() -> AsyncIterator[ResponseTracker]:
    tracker = ResponseTracker()
    task = asyncio.create_task(tracker.run())
    yield tracker
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_an_added_request_is_popped_by_its_key() -> None:
    tracker, processor, request = ResponseTracker(), Recorder(), req()
    tracker.add(b"k", processor, request, ttl=10)
    awaited = tracker.pop(b"k")
    assert awaited is not None
    assert (awaited.processor, awaited.request) == (processor, request)


def test_a_key_pops_only_once() -> None:
    tracker = ResponseTracker()
    tracker.add(b"k", Recorder(), req(), ttl=10)
    tracker.pop(b"k")
    assert tracker.pop(b"k") is None


def test_an_unknown_key_pops_none() -> None:
    assert ResponseTracker().pop(b"\x00\xff") is None


def test_len_counts_awaited_requests() -> None:
    tracker = ResponseTracker()
    tracker.add(b"a", Recorder(), req(1), ttl=10)
    tracker.add(b"b", Recorder(), req(2), ttl=10)
    tracker.pop(b"a")
    assert len(tracker) == 1


def test_any_bytes_are_a_key() -> None:
    tracker, key = ResponseTracker(), bytes(range(16))
    tracker.add(key, Recorder(), req(), ttl=10)
    assert tracker.pop(key) is not None


async def test_an_unanswered_request_expires_once(tracker: ResponseTracker) -> None:
    processor, request = Recorder(), req()
    tracker.add(b"k", processor, request, ttl=TTL)
    await asyncio.sleep(SETTLE)
    assert processor.expired == [request]


async def test_an_expired_request_is_no_longer_awaited(tracker: ResponseTracker) -> None:
    tracker.add(b"k", Recorder(), req(), ttl=TTL)
    await asyncio.sleep(SETTLE)
    assert tracker.pop(b"k") is None
    assert len(tracker) == 0


async def test_a_popped_request_never_expires(tracker: ResponseTracker) -> None:
    processor = Recorder()
    tracker.add(b"k", processor, req(), ttl=TTL)
    tracker.pop(b"k")
    await asyncio.sleep(SETTLE)
    assert processor.expired == []


async def test_a_request_added_while_waiting_expires_on_time(tracker: ResponseTracker) -> None:
    processor = Recorder()
    tracker.add(b"late", processor, req(1), ttl=60)
    await asyncio.sleep(0.01)  # the run loop now waits for the 60 s deadline
    tracker.add(b"soon", processor, req(2), ttl=TTL)
    await asyncio.sleep(SETTLE)
    assert [r.id for r in processor.expired] == ["r2"]


async def test_requests_expire_in_deadline_order(tracker: ResponseTracker) -> None:
    processor = Recorder()
    tracker.add(b"b", processor, req(2), ttl=TTL * 3)
    tracker.add(b"a", processor, req(1), ttl=TTL)
    await asyncio.sleep(SETTLE + TTL * 3)
    assert [r.id for r in processor.expired] == ["r1", "r2"]


async def test_re_adding_a_key_uses_the_new_deadline(tracker: ResponseTracker) -> None:
    processor = Recorder()
    tracker.add(b"k", processor, req(1), ttl=TTL)
    tracker.add(b"k", processor, req(2), ttl=60)
    await asyncio.sleep(SETTLE)
    assert processor.expired == []
    assert len(tracker) == 1


async def test_a_key_re_added_after_pop_does_not_expire_early(tracker: ResponseTracker) -> None:
    processor = Recorder()
    tracker.add(b"k", processor, req(1), ttl=TTL)
    tracker.pop(b"k")
    tracker.add(b"k", processor, req(2), ttl=60)
    await asyncio.sleep(SETTLE)
    assert processor.expired == []


async def test_a_failing_expiry_hook_does_not_stop_the_tracker(tracker: ResponseTracker) -> None:
    failing, healthy = Recorder(fail=True), Recorder()
    tracker.add(b"a", failing, req(1), ttl=TTL)
    await asyncio.sleep(SETTLE)
    tracker.add(b"b", healthy, req(2), ttl=TTL)
    await asyncio.sleep(SETTLE)
    assert len(failing.expired) == 1
    assert [r.id for r in healthy.expired] == ["r2"]
