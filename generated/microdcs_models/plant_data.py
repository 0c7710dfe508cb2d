"""Generated from plant_data.schema.json by ``microdcs dataclassgen``; do not edit by hand.

A data event on a scope's `data` topic: one or many samples of configured tags, stored in the
current value table all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from microdcs.models import Model


class TagQuality(StrEnum):
    """OPC UA-style quality of a value. Default good."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(kw_only=True)
class TagSampleData(Model):
    """One measured value of one tag."""

    class Config(Model.Config):
        forbid_extra_keys = True

    #: The tag's name (configured in the scope).
    tag: str = field(metadata={"alias": "Tag", "minLength": 1, "maxLength": 200})
    #: The value, of the tag's data type.
    value: float | int | bool | str = field(metadata={"alias": "Value"})
    quality: TagQuality | None = field(default=None, metadata={"alias": "Quality"})
    #: When the source measured it (Unix seconds). Default: the receive time.
    timestamp: float | None = field(default=None, metadata={"alias": "Timestamp"})


@dataclass(kw_only=True)
class PlantData(Model):
    """A data event on a scope's `data` topic: one or many samples of configured tags, stored in
    the current value table all or nothing.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.tag.data.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/plant_data.schema.json"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    samples: list[TagSampleData] = field(
        metadata={"alias": "Samples", "minItems": 1, "maxItems": 10000}
    )
