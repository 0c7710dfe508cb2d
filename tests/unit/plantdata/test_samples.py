"""Checking a data event's samples before anything is stored (pure, no Redis)."""

from __future__ import annotations

import pytest

from microdcs.core.errors import InvalidRequestError
from microdcs.plantdata.contract import Quality
from microdcs.plantdata.samples import describe_refusals, parse_samples
from microdcs.plantdata.table import MAX_LISTED, SamplesRefusedError
from microdcs.plantdata.tags import (
    DataType,
    TagDefinition,
    decode_sample,
    definition_from_config,
    value_kind,
)
from microdcs_models.plant_tag_config import PlantTagConfig

NOW = 1_700_000_000.5


def test_good_samples_become_five_script_arguments_each() -> None:
    tags, args, problems = parse_samples(
        {"Samples": [{"Tag": "a", "Value": 1.5, "Quality": "uncertain", "Timestamp": 7},
                     {"Tag": "b", "Value": True}, {"Tag": "c", "Value": 3},
                     {"Tag": "d", "Value": "x y"}]},
        NOW,
    )  # fmt: skip
    assert problems == [] and tags == ["a", "b", "c", "d"]
    assert args == ["a", "f", "1.5", "u", "7.0", "b", "b", "1", "g", repr(NOW),
                    "c", "i", "3", "g", repr(NOW), "d", "s", "x y", "g", repr(NOW)]  # fmt: skip


@pytest.mark.parametrize(
    ("sample", "words"),
    [
        ("text", "must be an object"),
        ({"Value": 1}, "'Tag' must be a non-empty string"),
        ({"Tag": "", "Value": 1}, "'Tag' must be a non-empty string"),
        ({"Tag": "a"}, "'Value' must be"),
        ({"Tag": "a", "Value": None}, "'Value' must be"),
        ({"Tag": "a", "Value": [1]}, "'Value' must be"),
        ({"Tag": "a", "Value": float("nan")}, "'Value' must be"),
        ({"Tag": "a", "Value": 1, "Quality": "great"}, "'Quality' must be"),
        ({"Tag": "a", "Value": 1, "Timestamp": "now"}, "'Timestamp' must be"),
        ({"Tag": "a", "Value": 1, "Colour": "red"}, "unknown field(s) ['Colour']"),
    ],
)
def test_a_malformed_sample_is_named_by_its_index(sample: object, words: str) -> None:
    _, _, problems = parse_samples({"Samples": [{"Tag": "ok", "Value": 1}, sample]}, NOW)
    assert len(problems) == 1
    assert problems[0].startswith("Samples[1]") and words in problems[0]


@pytest.mark.parametrize(
    "payload", [None, [], {"Samples": []}, {"Samples": {}}, {"Samples": [], "x": 1}, {"x": 1}]
)
def test_a_payload_without_samples_is_refused(payload: object) -> None:
    _, args, problems = parse_samples(payload, NOW)
    assert args == [] and len(problems) == 1


def test_the_scripts_refusals_are_worded_with_tag_and_types() -> None:
    words = describe_refusals(["a", "b", "c"], [(0, "unknown"), (2, "bs")])
    assert words == ["Samples[0] (tag 'a'): no such tag in the scope",
                     "Samples[2] (tag 'c'): a bool tag, got a string"]  # fmt: skip


def test_a_refusal_lists_at_most_a_bounded_number_of_problems() -> None:
    error = SamplesRefusedError([f"p{i}" for i in range(MAX_LISTED + 5)])
    assert error.kind == "invalid_request" and error.message.endswith("and 5 more")
    assert len(error.problems) == MAX_LISTED + 5


def test_a_bool_is_not_taken_for_an_int() -> None:
    assert value_kind(True) == ("b", "1") and value_kind(1) == ("i", "1")
    assert value_kind(2.0) == ("f", "2.0") and value_kind({}) is None


def test_stored_samples_read_back_with_their_type() -> None:
    sample = decode_sample("t", "f", b"u0 10.5 11.25 181.5")
    assert sample is not None
    assert (sample.value, sample.quality, sample.source_time, sample.receive_time) == (
        181.5, Quality.UNCERTAIN, 10.5, 11.25
    )  # fmt: skip
    stale = decode_sample("m", "s", "b1 1.0 2.0 auto mode ")
    assert stale is not None and stale.value == "auto mode " and stale.stale
    assert decode_sample("i", "i", b"g0 1 2 -3") is not None
    assert decode_sample("x", "f", None) is None


def test_a_definition_is_checked_once_and_has_a_spec_the_scripts_read() -> None:
    definition = definition_from_config(
        PlantTagConfig.from_raw({"Name": "TI-101", "DataType": "int", "Deadband": 2,
                                 "StaleTimeout": 30})
    )  # fmt: skip
    assert definition == TagDefinition("TI-101", DataType.INT, deadband=2.0, stale_timeout=30.0)
    assert definition.spec == "i 2.0 30.0"
    assert definition_from_config(PlantTagConfig(name="x")).data_type is DataType.FLOAT
    for bad in ("a/b", "a+b", "#", " "):
        with pytest.raises(InvalidRequestError):
            definition_from_config(PlantTagConfig(name=bad))
