"""Routing vocabulary: intents, directions and scope/subject conversions."""

from __future__ import annotations

import pytest

from microdcs.core.errors import InvalidRequestError
from microdcs.processing.routing import Direction, Intent, scope_levels, subject_of


def test_intents_are_the_four_last_topic_levels() -> None:
    assert {i.value for i in Intent} == {"commands", "data", "events", "metadata"}


def test_northbound_subscribes_to_commands() -> None:
    assert Direction.NORTHBOUND.subscribes == (Intent.COMMANDS,)


def test_northbound_publishes_data_events_and_metadata() -> None:
    assert set(Direction.NORTHBOUND.publishes) == {Intent.DATA, Intent.EVENTS, Intent.METADATA}


def test_southbound_subscribes_to_data_events_and_metadata() -> None:
    assert set(Direction.SOUTHBOUND.subscribes) == {Intent.DATA, Intent.EVENTS, Intent.METADATA}


def test_southbound_publishes_commands() -> None:
    assert Direction.SOUTHBOUND.publishes == (Intent.COMMANDS,)


@pytest.mark.parametrize("direction", list(Direction))
def test_a_direction_never_subscribes_to_what_it_publishes(direction: Direction) -> None:
    assert not set(direction.subscribes) & set(direction.publishes)


def test_northbound_events_go_to_events_by_default() -> None:
    assert Direction.NORTHBOUND.default_intent is Intent.EVENTS


def test_southbound_events_go_to_commands_by_default() -> None:
    assert Direction.SOUTHBOUND.default_intent is Intent.COMMANDS


@pytest.mark.parametrize("direction", list(Direction))
def test_the_default_intent_is_one_the_direction_publishes(direction: Direction) -> None:
    assert direction.default_intent in direction.publishes


def test_directions_parse_from_their_names() -> None:
    assert Direction("southbound") is Direction.SOUTHBOUND


@pytest.mark.parametrize("subject", [None, ""])
def test_no_subject_is_the_root_scope(subject: str | None) -> None:
    assert scope_levels(subject) == ()


def test_subject_dots_separate_scope_levels() -> None:
    assert scope_levels("plant1.line2.cell3") == ("plant1", "line2", "cell3")


def test_a_single_level_subject_is_one_scope_level() -> None:
    assert scope_levels("ww") == ("ww",)


@pytest.mark.parametrize("subject", ["a..b", ".a", "a.", "a/b", "a+b", "a#", "."])
def test_a_subject_with_an_empty_level_or_topic_metacharacter_is_invalid(subject: str) -> None:
    with pytest.raises(InvalidRequestError):
        scope_levels(subject)


def test_subject_of_joins_levels_with_dots() -> None:
    assert subject_of(("plant1", "line2")) == "plant1.line2"


def test_subject_of_the_root_scope_is_none() -> None:
    assert subject_of(()) is None


def test_subject_of_inverts_scope_levels() -> None:
    assert subject_of(scope_levels("a.b.c")) == "a.b.c"


@pytest.mark.parametrize("direction", list(Direction))
def test_errors_go_to_events_whatever_the_direction(direction: Direction) -> None:
    assert direction.error_intent is Intent.EVENTS
