"""Which Response Topics a request may name (confused-deputy protection)."""

from __future__ import annotations

import pytest

from microdcs.transports.mqtt.responsetopics import (
    ResponseTopicPolicy,
    filter_matches,
    parse_patterns,
)


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("mes/+/responses", "mes/a/responses", True),
        ("mes/+/responses", "mes/a/b/responses", False),
        ("mes/#", "mes", True),
        ("mes/#", "mes/a/b", True),
        ("#", "$SYS/x", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_filter_matching_follows_mqtt(pattern: str, topic: str, expected: bool) -> None:
    assert filter_matches(pattern, topic) is expected


def test_own_prefixes_are_refused_and_others_allowed() -> None:
    policy = ResponseTopicPolicy(["microdcs/responses"])
    policy.deny_prefix("app/equipment")
    assert policy.problem("microdcs/responses/replica-2") is not None
    assert policy.problem("app/equipment/ww/events") is not None
    assert policy.problem("app/equipment") is not None
    assert policy.problem("app/equipmentx/replies") is None
    assert policy.problem("mes/1/responses") is None


@pytest.mark.parametrize("topic", ["mes/#", "mes/+/r", "$SYS/x", "a\nb", "x" * 2000])
def test_invalid_topics_are_refused(topic: str) -> None:
    assert ResponseTopicPolicy([]).problem(topic) is not None


def test_allow_list_when_configured() -> None:
    policy = ResponseTopicPolicy([], parse_patterns(" mes/+/responses , line2/# "))
    assert policy.problem("mes/a/responses") is None
    assert policy.problem("line2/x/y") is None
    assert "APP_MQTT_RESPONSE_TOPIC_ALLOW" in (policy.problem("other/responses") or "")


def test_verdicts_stay_bounded() -> None:
    policy = ResponseTopicPolicy([])
    for n in range(5000):
        policy.problem(f"mes/{n}")
    assert len(policy._verdicts) <= 1024
