"""Generated from plant_read.schema.json by ``microdcs dataclassgen``; do not edit by hand.

Reads of a scope's current value table, many tags at once, over request/response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from microdcs.models import Model


@dataclass(kw_only=True)
class TagReadRequest(Model):
    """The current value of each named tag of the scope (the subject)."""

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.tag.read.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/plant_read.schema.json#/$defs/TagReadRequest"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    tags: list[str] = field(
        metadata={
            "alias": "Tags",
            "minItems": 1,
            "maxItems": 10000,
            "items": {"minLength": 1, "maxLength": 200},
        },
    )


@dataclass(kw_only=True)
class TagCurrentValue(Model):
    """A tag's current value as the table holds it (also the payload of the retained `cvt`
    topic).
    """

    tag: str = field(metadata={"alias": "Tag"})
    #: Absent for a tag that never received a value.
    value: float | int | bool | str | None = field(default=None, metadata={"alias": "Value"})
    #: good, uncertain or bad.
    quality: str = field(metadata={"alias": "Quality"})
    #: True when bad because nothing arrived within the stale timeout.
    stale: bool | None = field(default=None, metadata={"alias": "Stale"})
    #: When the source measured it (Unix seconds; 0: never received).
    source_time: float = field(metadata={"alias": "SourceTime"})
    #: When the table stored it (Unix seconds; 0: never received).
    receive_time: float = field(metadata={"alias": "ReceiveTime"})


@dataclass(kw_only=True)
class TagReadResponse(Model):
    """The samples of the configured tags asked for, in the order asked; names that are not
    configured in the scope are listed in `Unknown`.
    """

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.tag.read.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/plant_read.schema.json#/$defs/TagReadResponse"
    )

    samples: list[TagCurrentValue] = field(metadata={"alias": "Samples"})
    unknown: list[str] = field(metadata={"alias": "Unknown"})


# Requests answered with a typed response (set here: the response may be defined later).
TagReadRequest.__response_type__ = TagReadResponse
