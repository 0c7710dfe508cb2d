"""The compiled codec and plain mashumaro agree on every generated model.

The compiled decoder/encoder (``models/compiler.py``) stays because it is faster than
mashumaro on these classes while also validating; this test holds it to mashumaro's
results. Sample payloads are built from each class's fields and their schema constraints:
one with every field set (nested models, lists, maps, enums) and one with only the
required fields.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgpack
import orjson
import pytest

import microdcs_models.machinery_jobs
import microdcs_models.processor_metadata
import microdcs_models.sfc_recipe
from microdcs.models import Model

MODULES = (
    microdcs_models.machinery_jobs,
    microdcs_models.processor_metadata,
    microdcs_models.sfc_recipe,
)
MODELS = sorted(
    (
        obj
        for module in MODULES
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Model) and obj.__module__ == module.__name__
    ),
    key=lambda c: (c.__module__, c.__name__),
)
#: Nesting beyond which optional fields are left out (the SFC and state types recurse).
MAX_DEPTH = 4


def sample_value(tp: Any, metadata: Any, depth: int) -> Any:
    """A wire value of annotation ``tp`` that meets the constraints in ``metadata``."""
    if "const" in metadata:
        return metadata["const"]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return sample_value(inner, metadata, depth)
    if tp is Any:
        return {"nested": [1, "two", None, {"three": 3.5}]}
    if tp is bool:
        return True
    if tp is int:
        return max(metadata.get("minimum", 7), min(metadata.get("maximum", 7), 7))
    if tp is float:
        return 2.5
    if tp is str:
        if metadata.get("format") == "date-time":
            return "2024-08-15T06:00:00Z"
        if metadata.get("format") == "uuid":
            return "123e4567-e89b-12d3-a456-426614174000"
        assert "pattern" not in metadata, "add a sample for this pattern"
        return "s" * max(3, metadata.get("minLength", 0))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[-1].value
    if isinstance(tp, type) and issubclass(tp, Model):
        return sample_payload(tp, depth + 1, full=depth < MAX_DEPTH)
    if origin is list:
        (item,) = get_args(tp)
        count = max(2, metadata.get("minItems", 0))
        return [sample_value(item, metadata.get("items", {}), depth + 1) for _ in range(count)]
    if origin is dict:
        _, item = get_args(tp)
        return {"k": sample_value(item, {}, depth + 1)}
    raise AssertionError(f"no sample for {tp!r}")


def sample_payload(cls: type[Model], depth: int = 0, *, full: bool = True) -> dict[str, Any]:
    hints = get_type_hints(cls)
    payload: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name.startswith("_"):
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required or full:
            wire = f.metadata.get("alias", f.name)
            payload[wire] = sample_value(hints[f.name], f.metadata, depth)
    return payload


def test_every_generated_model_takes_the_compiled_path() -> None:
    assert len(MODELS) > 50
    assert [c.__name__ for c in MODELS if c._codec() is None] == []


@pytest.mark.parametrize("full", [True, False], ids=["every-field", "required-only"])
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_compiled_codec_and_mashumaro_agree(cls: type[Model], full: bool) -> None:
    payload = sample_payload(cls, full=full)
    compiled = cls.from_raw(payload)
    plain = cls.from_dict(payload)
    assert compiled == plain
    assert compiled.to_raw() == plain.to_dict() == payload
    assert compiled.encode("application/json") == plain.to_jsonb()
    assert msgpack.unpackb(compiled.encode("application/msgpack")) == payload
    assert cls.decode(orjson.dumps(payload), None) == plain
