"""The expiry rule of responses (processing/expiry.py), without a broker."""

from __future__ import annotations

from typing import ClassVar

from microdcs.core.cloudevent import CloudEvent
from microdcs.processing.expiry import default_seconds, remaining_seconds, with_expiry
from microdcs.processing.processor import CloudEventProcessor


class Own(CloudEventProcessor):
    response_expiry_seconds: ClassVar[int | None] = 5


class Never(CloudEventProcessor):
    response_expiry_seconds: ClassVar[int | None] = 0


def test_remaining_is_the_request_expiry_less_the_time_spent_in_whole_seconds() -> None:
    assert remaining_seconds(30, 0.0) == 30
    assert remaining_seconds(30, 0.2) == 29
    assert remaining_seconds(30, 2.9) == 27


def test_remaining_is_at_least_one_second() -> None:
    assert remaining_seconds(1, 0.7) == 1
    assert remaining_seconds(5, 9.0) == 1


def test_default_is_the_processor_own_else_the_runtime_one() -> None:
    assert default_seconds(CloudEventProcessor(), 60) == 60
    assert default_seconds(None, 60) == 60
    assert default_seconds(Own(), 60) == 5
    assert default_seconds(Own(), 0) == 5


def test_a_zero_default_means_no_expiry() -> None:
    assert default_seconds(CloudEventProcessor(), 0) is None
    assert default_seconds(Never(), 60) is None


def test_with_expiry_copies_the_event_and_leaves_the_original_alone() -> None:
    event = CloudEvent(type="t", source="s", extensions={"correlationid": "c"})
    expiring = with_expiry(event, 12)
    assert expiring.expiryinterval == 12
    assert expiring.extensions["correlationid"] == "c"
    assert event.expiryinterval is None


def test_with_expiry_keeps_an_expiry_the_event_has_of_its_own() -> None:
    event = CloudEvent(type="t", source="s", extensions={"expiryinterval": 10})
    assert with_expiry(event, 1) is event
    assert with_expiry(CloudEvent(type="t", source="s"), None).expiryinterval is None
