"""Plant data settings: the topic prefix may not share subscriptions with another."""

from __future__ import annotations

import pytest

from microdcs.app.config import load_config
from microdcs.core.errors import ConfigurationError


def test_the_default_prefix_is_apart_from_the_alarm_and_job_prefixes() -> None:
    config = load_config({})
    assert config.plantdata.topic_prefix == "app/plant"
    assert config.plantdata.cvt_publish_interval_seconds > 0


@pytest.mark.parametrize(
    "environ",
    [
        {"APP_PLANT_TOPIC_PREFIX": "app/alarms"},
        {"APP_PLANT_TOPIC_PREFIX": "app", "APP_ALARMS_TOPIC_PREFIX": "app/alarms"},
        {"APP_PLANT_TOPIC_PREFIX": "app/alarms/plant"},
        {"APP_PLANT_TOPIC_PREFIX": "x/plant", "APP_JOBS_TOPIC_PREFIX": "x/plant"},
    ],
)
def test_a_prefix_that_overlaps_another_processors_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_config(environ)
    assert raised.value.variable == "APP_PLANT_TOPIC_PREFIX"


def test_a_negative_cvt_interval_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        load_config({"APP_PLANT_CVT_PUBLISH_INTERVAL_SECONDS": "-1"})
