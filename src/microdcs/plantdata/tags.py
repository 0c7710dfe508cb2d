"""Tag definitions and the text forms the current value table stores them in.

A :class:`TagDefinition` is the checked form of a ``...config.tag.v1`` payload. The Lua
scripts never parse JSON: they read a definition's *spec* (``"f 0.5 30"``: type, deadband,
stale timeout) and a stored sample as ``"<quality><stale> <source> <receive> <value>"``
(``"g0 1733.5 1733.6 181.5"``), both split with one pattern match. This module is the
only place that writes or reads those forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from microdcs.core.errors import InvalidRequestError
from microdcs.plantdata.contract import Quality, TagSample, TagValue
from microdcs_models.plant_tag_config import PlantTagConfig, TagDataType

__all__ = [
    "DataType",
    "TagDefinition",
    "decode_sample",
    "definition_from_config",
    "sample_raw",
    "value_kind",
]

#: Characters a tag name may not hold: it is a topic level of its retained cvt topic.
_FORBIDDEN = frozenset("/+#\x00")
#: Longest stale timeout (the schema's maximum): a year.
MAX_STALE_SECONDS = 31_536_000.0


class DataType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"

    @property
    def code(self) -> str:
        """The one-letter type of the spec (the kind letter of values it accepts)."""
        return _CODES[self]


_CODES = {DataType.FLOAT: "f", DataType.INT: "i", DataType.BOOL: "b", DataType.STRING: "s"}
_TYPES = {code: t for t, code in _CODES.items()}
QUALITY_CODES = {Quality.GOOD: "g", Quality.UNCERTAIN: "u", Quality.BAD: "b"}
_QUALITIES = {code: q for q, code in QUALITY_CODES.items()}


@dataclass(frozen=True, slots=True)
class TagDefinition:
    """One configured tag of a scope (the scope is the store's key, not part of it)."""

    name: str
    data_type: DataType = DataType.FLOAT
    unit: str = ""
    #: Absolute deadband for storing float and int values (>= 0).
    deadband: float = 0.0
    #: Seconds without a sample before the tag turns bad and stale (0: never).
    stale_timeout: float = 0.0
    description: str = ""

    @property
    def spec(self) -> str:
        return f"{self.data_type.code} {self.deadband!r} {self.stale_timeout!r}"

    def to_config(self) -> PlantTagConfig:
        return PlantTagConfig(
            name=self.name, data_type=TagDataType(self.data_type.value),
            unit=self.unit or None, deadband=self.deadband,
            stale_timeout=self.stale_timeout, description=self.description or None,
        )  # fmt: skip


def check_tag_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidRequestError("field 'Name' must not be empty")
    if any(c in _FORBIDDEN for c in name):
        raise InvalidRequestError(f"tag name {name!r} must not contain / + # or NUL")
    return name


def definition_from_config(config: PlantTagConfig) -> TagDefinition:
    """The checked definition; an :class:`InvalidRequestError` says what is wrong."""
    name = check_tag_name(config.name)
    deadband = float(config.deadband or 0.0)
    stale = float(config.stale_timeout or 0.0)
    if not math.isfinite(deadband) or deadband < 0:
        raise InvalidRequestError(f"tag {name!r}: 'Deadband' must be a number >= 0")
    if not math.isfinite(stale) or not 0 <= stale <= MAX_STALE_SECONDS:
        raise InvalidRequestError(f"tag {name!r}: 'StaleTimeout' must be 0..{MAX_STALE_SECONDS:g}")
    data_type = DataType(config.data_type.value) if config.data_type else DataType.FLOAT
    return TagDefinition(
        name, data_type, unit=config.unit or "", deadband=deadband, stale_timeout=stale,
        description=config.description or "",
    )  # fmt: skip


def value_kind(value: Any) -> tuple[str, str] | None:
    """``(kind letter, text)`` of a sample value as the ingest script takes it; ``None``
    for what no tag can hold (lists, null, non-finite numbers)."""
    kind = type(value)
    if kind is float:
        return ("f", repr(value)) if math.isfinite(value) else None
    if kind is bool:  # before int: a bool is an int in Python
        return ("b", "1" if value else "0")
    if kind is int:
        return ("i", str(value))
    if kind is str:
        return ("s", value)
    return None


def _value(code: str, text: bytes) -> TagValue:
    if code == "f":
        return float(text)
    if code == "i":
        return int(text)
    if code == "b":
        return text == b"1"
    return text.decode()


#: A stored sample's first byte (its quality) -> the quality.
_QUALITY_BYTES = {ord(code): q for code, q in _QUALITIES.items()}
_STALE = ord("1")


def decode_sample(tag: str, type_code: str, stored: bytes | str | None) -> TagSample | None:
    """A stored sample (``None`` when nothing is stored)."""
    if not stored:
        return None
    raw = stored.encode() if isinstance(stored, str) else stored
    head, source, receive, text = raw.split(b" ", 3)
    return TagSample(
        tag, _value(type_code, text), _QUALITY_BYTES[head[0]], float(source), float(receive),
        head[1] == _STALE,
    )  # fmt: skip


def type_of_spec(spec: bytes | str) -> str:
    """The type letter of a stored spec."""
    return chr(spec[0]) if isinstance(spec, bytes) else spec[0]


def data_type_of(code: str) -> DataType:
    return _TYPES[code]


def sample_raw(sample: TagSample) -> dict[str, Any]:
    """A sample with the wire names of ``TagCurrentValue`` (reads and the cvt topic)."""
    return {
        "Tag": sample.tag, "Value": sample.value, "Quality": sample.quality.value,
        "Stale": sample.stale, "SourceTime": sample.source_time,
        "ReceiveTime": sample.receive_time,
    }  # fmt: skip


def never_received(tag: str) -> TagSample:
    """What a read returns for a configured tag without a value yet: bad, no times."""
    return TagSample(tag, None, Quality.BAD, 0.0, 0.0)
