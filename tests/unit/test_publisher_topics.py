"""The retained job topics the publisher names, as the MES reads them."""

from __future__ import annotations

import pytest

from microdcs.core.errors import ConfigurationError, InvalidRequestError
from microdcs.publisher.topics import RetainedTopics

TOPICS = RetainedTopics("app/jobs", 2)


def test_a_root_scope_job_lives_directly_under_the_prefix() -> None:
    assert TOPICS.order(None, "J1") == "app/jobs/order/J1"
    assert TOPICS.result(None, "J1") == "app/jobs/result/J1"
    assert TOPICS.state_index(None) == "app/jobs/state-index"


def test_each_scope_level_is_a_topic_level() -> None:
    assert TOPICS.order("plant.line", "J1") == "app/jobs/plant/line/order/J1"
    assert TOPICS.state_index("plant.line") == "app/jobs/plant/line/state-index"


def test_metadata_and_marker_are_not_scoped() -> None:
    assert TOPICS.metadata == "app/jobs/metadata"
    assert TOPICS.marker == "app/jobs/retained-marker"


def test_a_subject_deeper_than_the_levels_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        TOPICS.order("a.b.c", "J1")


@pytest.mark.parametrize("prefix", ["", "/app", "app/", "app/+", "$SYS/x"])
def test_a_prefix_no_subscription_could_match_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        RetainedTopics(prefix)
