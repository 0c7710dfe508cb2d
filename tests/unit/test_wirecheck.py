"""Outgoing strings the broker would disconnect us for are refused before sending."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdcs.core.errors import OutgoingEventError
from microdcs.core.wiretext import all_wire_text, sanitize_text, wire_text_problem
from microdcs.transports.mqtt.mapping import MqttEnvelope
from microdcs.transports.mqtt.wirecheck import check_envelope, check_topic, topic_problem


@pytest.mark.parametrize(
    "topic", ["a/#", "a/+/b", "", "nul\x00", "line\nbreak", "c1\x9f", "del\x7f", "\ud800"]
)
def test_unsendable_topics_are_named(topic: str) -> None:
    assert topic_problem(topic) is not None
    with pytest.raises(OutgoingEventError):
        check_topic(topic)


@pytest.mark.parametrize("topic", ["app/jobs/ww/events", "réponse/topic", "a b/c", "x" * 1000])
def test_ordinary_topics_pass(topic: str) -> None:
    assert topic_problem(topic) is None


def test_a_string_over_65535_bytes_is_refused() -> None:
    assert wire_text_problem("é" * 40_000) is not None  # 80,000 bytes
    assert wire_text_problem("e" * 65_535) is None


def test_control_character_in_a_user_property_value_is_refused() -> None:
    envelope = MqttEnvelope(payload=b"", user_properties=[("correlationid", "req-1\nsecond")])
    with pytest.raises(OutgoingEventError, match="correlationid"):
        check_envelope(envelope, "a/b")


def test_wildcard_response_topic_in_an_envelope_is_refused() -> None:
    with pytest.raises(OutgoingEventError, match="response topic"):
        check_envelope(MqttEnvelope(payload=b"", response_topic="mes/#"), "a/b")


def test_oversized_correlation_data_is_refused() -> None:
    with pytest.raises(OutgoingEventError, match="correlation"):
        check_envelope(MqttEnvelope(payload=b"", correlation_data=b"x" * 70_000))


def test_sanitized_error_text_is_one_wire_safe_line() -> None:
    text = sanitize_text("ERR line one\nline two\r\x00end" + "x" * 5000)
    assert wire_text_problem(text) is None
    assert len(text) <= 1024
    assert text.startswith("ERR line one line two")


@given(st.lists(st.text(max_size=40), max_size=12))
def test_the_one_pass_check_of_many_strings_agrees_with_the_check_of_each(
    values: list[str],
) -> None:
    each_fine = all(wire_text_problem(value) is None for value in values)
    if all_wire_text(values):
        assert each_fine
    else:  # False may only mean "look closer": here every string is short
        assert not each_fine


def test_the_one_pass_check_sends_long_strings_to_the_check_of_each() -> None:
    long_but_fine = ["e" * 30_000, "f" * 30_000]
    assert not all_wire_text(long_but_fine)
    check_envelope(MqttEnvelope(payload=b"", user_properties=[("a", v) for v in long_but_fine]))
