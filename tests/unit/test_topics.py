"""Topic layout ``{prefix}/{scope...}/{intent}``: building, parsing and subscriptions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdcs.core.errors import ConfigurationError, InvalidRequestError
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.topics import TopicLayout

LAYOUT = TopicLayout("app/jobs")


def test_default_scope_depth_is_three_levels() -> None:
    assert LAYOUT.max_levels == 3


def test_topic_of_a_root_scope_event_has_no_scope_levels() -> None:
    assert LAYOUT.topic(None, Intent.COMMANDS) == "app/jobs/commands"


def test_topic_of_an_empty_subject_is_the_root_scope() -> None:
    assert LAYOUT.topic("", Intent.EVENTS) == "app/jobs/events"


def test_topic_turns_subject_dots_into_levels() -> None:
    assert LAYOUT.topic("plant1.line2", Intent.EVENTS) == "app/jobs/plant1/line2/events"


@pytest.mark.parametrize("subject", ["a..b", "a/b", "a+", "#", ".a", "a."])
def test_topic_rejects_a_subject_that_is_not_a_valid_scope(subject: str) -> None:
    with pytest.raises(InvalidRequestError):
        LAYOUT.topic(subject, Intent.COMMANDS)


def test_topic_rejects_a_subject_deeper_than_max_levels() -> None:
    # Such a topic matches none of the layout's filters and parse() refuses it.
    with pytest.raises(InvalidRequestError):
        TopicLayout("app/jobs", max_levels=2).topic("a.b.c", Intent.COMMANDS)


def test_scoped_appends_a_tail_below_the_scope() -> None:
    assert LAYOUT.scoped("ww.c1", "order", "J1") == "app/jobs/ww/c1/order/J1"


def test_scoped_of_the_root_scope_follows_the_prefix() -> None:
    assert LAYOUT.scoped(None, "state-index") == "app/jobs/state-index"


def test_parse_reads_subject_and_intent() -> None:
    assert LAYOUT.parse("app/jobs/plant1/line2/commands") == ("plant1.line2", Intent.COMMANDS)


def test_parse_of_a_root_scope_topic_has_no_subject() -> None:
    assert LAYOUT.parse("app/jobs/metadata") == (None, Intent.METADATA)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_parse_accepts_zero_to_max_levels_of_scope(depth: int) -> None:
    levels = [f"l{i}" for i in range(depth)]
    topic = "/".join(["app/jobs", *levels, "data"])
    assert LAYOUT.parse(topic) == (".".join(levels) or None, Intent.DATA)


def test_parse_refuses_more_scope_levels_than_configured() -> None:
    assert LAYOUT.parse("app/jobs/a/b/c/d/commands") is None


def test_parse_with_zero_max_levels_accepts_only_the_root_scope() -> None:
    layout = TopicLayout("p", max_levels=0)
    assert layout.parse("p/commands") == (None, Intent.COMMANDS)
    assert layout.parse("p/a/commands") is None


@pytest.mark.parametrize(
    "topic",
    [
        "other/jobs/a/commands",
        "app/jobsx/a/commands",
        "app/jobs",
        "app/jobs/",
        "app/jobs/a/unknown",
        "app/jobs/a/order/J1",
        "app/jobs/a//commands",
        "app/jobs/a.b/commands",
        "xapp/jobs/commands",
    ],
)
def test_parse_refuses_topics_outside_the_layout(topic: str) -> None:
    assert LAYOUT.parse(topic) is None


def test_parse_works_for_a_nested_prefix() -> None:
    layout = TopicLayout("site/a/app/jobs")
    assert layout.parse("site/a/app/jobs/x/events") == ("x", Intent.EVENTS)


_LEVEL = st.from_regex(r"[A-Za-z0-9_\-]{1,8}", fullmatch=True)


@given(
    levels=st.lists(_LEVEL, max_size=3),
    intent=st.sampled_from(list(Intent)),
)
def test_parse_inverts_topic(levels: list[str], intent: Intent) -> None:
    subject = ".".join(levels) or None
    assert LAYOUT.parse(LAYOUT.topic(subject, intent)) == (subject, intent)


def test_filters_cover_every_depth_from_zero_to_max_levels() -> None:
    assert TopicLayout("app/jobs", max_levels=2).filters((Intent.COMMANDS,), None) == [
        "app/jobs/commands",
        "app/jobs/+/commands",
        "app/jobs/+/+/commands",
    ]


def test_filters_repeat_for_every_intent() -> None:
    filters = TopicLayout("p", max_levels=1).filters((Intent.DATA, Intent.EVENTS), None)
    assert filters == ["p/data", "p/+/data", "p/events", "p/+/events"]


def test_shared_filters_use_the_share_group() -> None:
    assert TopicLayout("app/jobs", max_levels=1).filters((Intent.COMMANDS,), "g1") == [
        "$share/g1/app/jobs/commands",
        "$share/g1/app/jobs/+/commands",
    ]


def test_with_zero_max_levels_there_is_one_filter_per_intent() -> None:
    assert TopicLayout("p", max_levels=0).filters((Intent.COMMANDS,), None) == ["p/commands"]


@pytest.mark.parametrize("prefix", ["", "/app", "app/", "app/+/x", "app/#", "$SYS/x", "+"])
def test_an_invalid_prefix_is_a_configuration_error_naming_prefix(prefix: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TopicLayout(prefix)
    assert caught.value.variable == "prefix"


def test_negative_max_levels_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        TopicLayout("app", max_levels=-1)
    assert caught.value.variable == "max_levels"


def test_a_layout_is_immutable() -> None:
    with pytest.raises(AttributeError):
        LAYOUT.prefix = "x"  # type: ignore[misc]
