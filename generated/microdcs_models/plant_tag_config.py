"""Generated from plant_tag_config.schema.json by ``microdcs dataclassgen``; do not edit by hand.

Tag configuration of a scope: store (PUT) or delete (DELETE) one tag of the current value table.
DELETE needs only `Name`; a PUT that changes a tag's `DataType` drops the value it held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from microdcs.models import Model


class TagDataType(StrEnum):
    """What values the tag holds. Default float (an integer value is accepted for a float tag)."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"


@dataclass(kw_only=True)
class PlantTagConfig(Model):
    """Tag configuration of a scope: store (PUT) or delete (DELETE) one tag of the current value
    table. DELETE needs only `Name`; a PUT that changes a tag's `DataType` drops the value it
    held.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.config.tag.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/plant_tag_config.schema.json"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    #: The tag's name, unique within the scope (e.g. `oven1.temp`); no `/`, `+`, `#` (it becomes a
    #: topic level of the retained `cvt` topic).
    name: str = field(metadata={"alias": "Name", "minLength": 1, "maxLength": 200})
    data_type: TagDataType | None = field(default=None, metadata={"alias": "DataType"})
    #: Engineering unit (e.g. `degC`, `bar`).
    unit: str | None = field(default=None, metadata={"alias": "Unit", "maxLength": 50})
    #: Absolute deadband for storing (float and int tags): a new value that differs from the stored
    #: one by no more than this is not stored (a quality change always is). Default 0: every
    #: different value is stored.
    deadband: float | None = field(default=None, metadata={"alias": "Deadband", "minimum": 0})
    #: Seconds without any sample after which the tag turns quality bad and stale. Default 0: never
    #: stale.
    stale_timeout: float | None = field(
        default=None, metadata={"alias": "StaleTimeout", "minimum": 0, "maximum": 31536000}
    )
    #: What the tag measures, for people.
    description: str | None = field(
        default=None, metadata={"alias": "Description", "maxLength": 1000}
    )
