"""Payload validation of the model base: one error type naming the offending field."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import orjson
import pytest

from microdcs.core.errors import PayloadDecodeError, PayloadValidationError
from microdcs.models import Model, hidden
from microdcs_models.machinery_jobs import ISA95ParameterDataType
from microdcs_models.sfc_recipe import SfcQualifier, SfcRecipe

JSON = "application/json"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


@dataclass(kw_only=True)
class Reading(Model):
    sensor: str = field(metadata={"alias": "Sensor"})
    levels: list[Level] = field(default_factory=list, metadata={"alias": "Levels"})
    counts: dict[str, int] | None = None
    tags: list[str | None] | None = None
    _job_key: str | None = hidden()


@dataclass(kw_only=True)
class Stamped(Model):
    """datetime is not handled by the compiled codec: mashumaro decodes it."""

    at: datetime.datetime


def recipe(**action: Any) -> bytes:
    base = {
        "Name": "a",
        "Step": "s",
        "Qualifier": "N",
        "Interaction": "push_command",
        "TypeId": "t",
    }
    return orjson.dumps(
        {"Steps": [{"Name": "s", "Initial": True}], "Transitions": [], "Actions": [base | action]}
    )


def test_unknown_enum_value_names_the_field() -> None:
    with pytest.raises(PayloadValidationError) as caught:
        SfcRecipe.decode(recipe(Qualifier="Q"), JSON)
    assert caught.value.field == "Actions[0].Qualifier"
    assert "SfcQualifier" in caught.value.reason


def test_known_enum_value_decodes_to_the_member() -> None:
    action = SfcRecipe.decode(recipe(Qualifier="SD", Time=2), JSON).actions
    assert action is not None and action[0].qualifier is SfcQualifier.SD


def test_unknown_key_of_a_closed_schema_object_names_the_key() -> None:
    with pytest.raises(PayloadValidationError) as caught:
        SfcRecipe.decode(recipe(Timeout=3), JSON)
    assert caught.value.field == "Actions[0].Timeout"


def test_nested_list_item_is_named_by_index() -> None:
    payload = b'{"Name": "b", "Type": "selection", "Branches": [["a"], ["b", 3]]}'
    from microdcs_models.sfc_recipe import SfcBranch

    with pytest.raises(PayloadValidationError) as caught:
        SfcBranch.decode(payload, JSON)
    assert caught.value.field == "Branches[1][1]"


def test_recursive_types_validate_at_depth() -> None:
    payload = {"ID": "a", "Subparameters": [{"ID": "b", "Subparameters": [{"ID": 3}]}]}
    with pytest.raises(PayloadValidationError) as caught:
        ISA95ParameterDataType.from_raw(payload)
    assert caught.value.field == "Subparameters[0].Subparameters[0].ID"


def test_any_typed_value_accepts_every_json_value() -> None:
    for value in (None, 1, 2.5, "x", [1, {"a": None}], {"k": [True]}):
        param = ISA95ParameterDataType.from_raw({"ID": "p", "Value": value})
        assert param.value == value


def test_payload_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(PayloadValidationError) as caught:
        Reading.decode(b"[1, 2]", JSON)
    assert caught.value.field is None


def test_invalid_json_is_a_decode_error() -> None:
    with pytest.raises(PayloadDecodeError):
        Reading.decode(b'{"Sensor": ', JSON)


def test_list_of_int_enum_and_dict_values_are_checked() -> None:
    reading = Reading.decode(b'{"Sensor": "s", "Levels": [1, 2], "counts": {"a": 1}}', JSON)
    assert reading.levels == [Level.LOW, Level.HIGH]
    with pytest.raises(PayloadValidationError) as caught:
        Reading.decode(b'{"Sensor": "s", "Levels": [1, 3]}', JSON)
    assert caught.value.field == "Levels[1]"
    with pytest.raises(PayloadValidationError) as caught:
        Reading.decode(b'{"Sensor": "s", "counts": {"a": "1"}}', JSON)
    assert caught.value.field == "counts.a"


def test_null_items_only_where_the_type_allows_them() -> None:
    assert Reading.decode(b'{"Sensor": "s", "tags": ["a", null]}', JSON).tags == ["a", None]
    with pytest.raises(PayloadValidationError) as caught:
        Reading.decode(b'{"Sensor": "s", "Levels": [null]}', JSON)
    assert caught.value.field == "Levels[0]"


def test_default_factory_gives_each_instance_its_own_value() -> None:
    first = Reading.decode(b'{"Sensor": "a"}', JSON)
    second = Reading.decode(b'{"Sensor": "b"}', JSON)
    first.levels.append(Level.LOW)
    assert second.levels == []


def test_hidden_field_is_neither_read_from_nor_written_to_the_payload() -> None:
    reading = Reading.decode(b'{"Sensor": "s", "_job_key": "x", "jobkey": "y"}', JSON)
    assert reading._job_key is None
    reading.restore_hidden({"jobkey": "K"})
    assert reading._job_key == "K"
    assert orjson.loads(reading.encode(JSON)) == {"Sensor": "s", "Levels": []}


def test_enum_values_are_encoded_as_plain_values_in_msgpack() -> None:
    import msgpack

    reading = Reading(sensor="s", levels=[Level.HIGH])
    assert msgpack.unpackb(reading.encode("application/msgpack")) == {"Sensor": "s", "Levels": [2]}


def test_models_with_types_the_codec_does_not_know_use_mashumaro() -> None:
    stamped = Stamped.decode(b'{"at": "2024-08-15T06:00:00+00:00"}', JSON)
    assert stamped.at == datetime.datetime(2024, 8, 15, 6, tzinfo=datetime.UTC)
    assert Stamped._codec() is None
    with pytest.raises(PayloadValidationError) as caught:
        Stamped.decode(b"{}", JSON)
    assert caught.value.field == "at"


def test_excessive_nesting_is_a_validation_error() -> None:
    param: dict[str, Any] = {"ID": "leaf"}
    for _ in range(5000):
        param = {"ID": "p", "Subparameters": [param]}
    with pytest.raises(PayloadValidationError):
        ISA95ParameterDataType.from_raw(param)
