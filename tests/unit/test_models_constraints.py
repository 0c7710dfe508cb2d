"""JSON Schema validation keywords, generated into the model and enforced on decode.

The models come from ``tests/data/models/constraints.schema.json`` through the generator,
so each test covers the whole path: schema keyword -> field metadata -> compiled check.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack
import orjson
import pytest

from microdcs.codegen import render_module
from microdcs.core.errors import PayloadValidationError
from microdcs.models import Model

SCHEMA = Path(__file__).parents[2] / "tests" / "data" / "models" / "constraints.schema.json"
JSON = "application/json"
VALID: dict[str, Any] = {
    "RampSeconds": 30,
    "Gain": 2.5,
    "Label": "drum",
    "Code": "AB12",
    "Tags": ["a", "b"],
    "Kind": "drum",
    "Version": 2,
    "At": "2024-08-15T06:00:00.250+02:00",
    "Id": "123e4567-e89b-12d3-a456-426614174000",
    "Limit": None,
    "Stages": [{"Speed": 3}],
}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    path = tmp_path_factory.mktemp("constraints") / "constraints_models.py"
    path.write_text(render_module(SCHEMA.read_text(), SCHEMA.name))
    spec = importlib.util.spec_from_file_location("_constraints_models", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def refused(module: ModuleType, **changes: Any) -> PayloadValidationError:
    with pytest.raises(PayloadValidationError) as caught:
        module.DrumConfig.decode(orjson.dumps(VALID | changes), JSON)
    return caught.value


def test_a_payload_within_every_constraint_decodes_and_round_trips(module: ModuleType) -> None:
    config = module.DrumConfig.decode(orjson.dumps(VALID), JSON)
    assert config.ramp_seconds == 30
    assert orjson.loads(config.encode(JSON)) == {k: v for k, v in VALID.items() if v is not None}
    assert module.DrumConfig._codec() is not None  # the compiled path, not mashumaro's


def test_minimum(module: ModuleType) -> None:
    error = refused(module, RampSeconds=-5)
    assert (error.field, error.reason) == ("RampSeconds", "must be at least 0")
    module.DrumConfig.decode(orjson.dumps(VALID | {"RampSeconds": 0}), JSON)


def test_maximum(module: ModuleType) -> None:
    error = refused(module, RampSeconds=3601)
    assert (error.field, error.reason) == ("RampSeconds", "must be at most 3600")
    module.DrumConfig.decode(orjson.dumps(VALID | {"RampSeconds": 3600}), JSON)


def test_exclusive_minimum(module: ModuleType) -> None:
    error = refused(module, Gain=0)
    assert (error.field, error.reason) == ("Gain", "must be greater than 0")
    module.DrumConfig.decode(orjson.dumps(VALID | {"Gain": 0.001}), JSON)


def test_exclusive_maximum(module: ModuleType) -> None:
    error = refused(module, Gain=10.0)
    assert (error.field, error.reason) == ("Gain", "must be less than 10")


def test_min_length(module: ModuleType) -> None:
    error = refused(module, Label="d")
    assert (error.field, error.reason) == ("Label", "must be at least 2 characters long")


def test_max_length_counts_characters_not_bytes(module: ModuleType) -> None:
    module.DrumConfig.decode(orjson.dumps(VALID | {"Label": "äöüäöüäö"}), JSON)
    error = refused(module, Label="drumdrumd")
    assert (error.field, error.reason) == ("Label", "must be at most 8 characters long")


def test_pattern_is_searched_as_json_schema_does(module: ModuleType) -> None:
    error = refused(module, Code="ab12")
    assert error.field == "Code"
    assert error.reason == "must match the pattern '^[A-Z]{2}[0-9]+$'"


def test_min_items(module: ModuleType) -> None:
    error = refused(module, Tags=[])
    assert (error.field, error.reason) == ("Tags", "must have at least 1 items")


def test_max_items(module: ModuleType) -> None:
    error = refused(module, Tags=["a", "b", "c", "d"])
    assert (error.field, error.reason) == ("Tags", "must have at most 3 items")


def test_item_constraints_name_the_item(module: ModuleType) -> None:
    error = refused(module, Tags=["a", ""])
    assert (error.field, error.reason) == ("Tags[1]", "must be at least 1 characters long")


def test_const_on_an_untyped_property(module: ModuleType) -> None:
    assert refused(module, Kind="barrel").field == "Kind"
    assert refused(module, Kind=["drum"]).reason == "must be 'drum'"


def test_const_is_json_equality(module: ModuleType) -> None:
    module.DrumConfig.decode(orjson.dumps(VALID | {"Version": 2}), JSON)
    error = refused(module, Version=3)
    assert (error.field, error.reason) == ("Version", "must be 2")


@pytest.mark.parametrize(
    "value",
    [
        "2024-08-15T06:00:00",  # no offset
        "2024-08-15 06:00:00Z",  # space instead of T
        "2024-02-30T06:00:00Z",  # no such day
        "2024-08-15T24:00:00Z",
        "15.08.2024",
    ],
)
def test_format_date_time(module: ModuleType, value: str) -> None:
    error = refused(module, At=value)
    assert (error.field, error.reason) == ("At", "must be an RFC 3339 date-time")


def test_format_uuid(module: ModuleType) -> None:
    module.DrumConfig.decode(orjson.dumps(VALID | {"Id": VALID["Id"].upper()}), JSON)
    error = refused(module, Id="123e4567e89b12d3a456426614174000")
    assert (error.field, error.reason) == ("Id", "must be a UUID")


def test_nullable_property_checks_only_a_value(module: ModuleType) -> None:
    assert refused(module, Limit=0).field == "Limit"
    module.DrumConfig.decode(orjson.dumps(VALID | {"Limit": None}), JSON)


def test_nested_violation_names_the_path(module: ModuleType) -> None:
    error = refused(module, Stages=[{"Speed": 1}, {"Speed": 0}])
    assert (error.field, error.reason) == ("Stages[1].Speed", "must be at least 1")


def test_msgpack_payloads_get_the_same_checks(module: ModuleType) -> None:
    payload = msgpack.packb(VALID | {"RampSeconds": -5})
    with pytest.raises(PayloadValidationError) as caught:
        module.DrumConfig.decode(payload, "application/msgpack")
    assert caught.value.field == "RampSeconds"


def test_generated_constraints_are_in_the_field_metadata(module: ModuleType) -> None:
    fields = {f.name: f for f in dataclasses.fields(module.DrumConfig)}
    assert dict(fields["ramp_seconds"].metadata) == {
        "alias": "RampSeconds",
        "minimum": 0,
        "maximum": 3600,
    }
    assert fields["tags"].metadata["items"] == {"minLength": 1}


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (Path(sys.prefix) / "bin" / "ruff").exists(),
    reason="ruff not installed",
)
def test_generated_constraint_fields_are_ruff_format_clean(tmp_path: Path) -> None:
    path = tmp_path / "constraints_models.py"
    path.write_text(render_module(SCHEMA.read_text(), SCHEMA.name))
    ruff = shutil.which("ruff") or str(Path(sys.prefix) / "bin" / "ruff")
    result = subprocess.run(
        [ruff, "format", "--check", "--isolated", "--line-length", "100", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass(kw_only=True)
class Leg(Model):
    speed: int = field(metadata={"alias": "Speed", "minimum": 1})


@dataclass(kw_only=True)
class Timed(Model):
    """``datetime`` is not handled by the compiled codec: mashumaro decodes this model."""

    at: datetime.datetime = field(metadata={"alias": "At"})
    ramp: int | None = field(default=None, metadata={"alias": "Ramp", "minimum": 0})
    code: str | None = field(default=None, metadata={"alias": "Code", "pattern": "^[A-Z]+$"})
    legs: list[Leg] | None = field(default=None, metadata={"alias": "Legs", "maxItems": 2})


def timed(**changes: Any) -> bytes:
    return orjson.dumps({"At": "2024-08-15T06:00:00Z", "Ramp": 1, "Code": "AB"} | changes)


def test_models_on_the_mashumaro_path_get_the_same_checks() -> None:
    assert Timed._codec() is None
    assert Timed.decode(timed(Legs=[{"Speed": 1}]), JSON).ramp == 1
    for changes, field_path, reason in [
        ({"Ramp": -5}, "Ramp", "must be at least 0"),
        ({"Code": "ab"}, "Code", "must match the pattern '^[A-Z]+$'"),
        ({"Legs": [{"Speed": 1}] * 3}, "Legs", "must have at most 2 items"),
        ({"Legs": [{"Speed": 1}, {"Speed": 0}]}, "Legs[1].Speed", "must be at least 1"),
    ]:
        with pytest.raises(PayloadValidationError) as caught:
            Timed.decode(timed(**changes), JSON)
        assert (caught.value.field, caught.value.reason) == (field_path, reason)
