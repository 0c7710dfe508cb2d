"""Generated from processor_metadata.schema.json by ``microdcs dataclassgen``; do not edit by hand.

The retained capability description every bound processor publishes on `{prefix}/metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from microdcs.models import Model


class ProcessorDirection(StrEnum):
    """Which side a processor faces."""

    NORTHBOUND = "northbound"
    SOUTHBOUND = "southbound"


@dataclass(kw_only=True)
class EventTypeInfo(Model):
    """A CloudEvent type a processor handles or emits."""

    #: The CloudEvent `type`.
    type: str
    #: The CloudEvent `dataschema` of its data, when it has one.
    dataschema: str | None = None
    #: The `type` of the response to a handled request, when it is answered.
    response_type: str | None = None
    #: The `dataschema` of that response.
    response_dataschema: str | None = None


@dataclass(kw_only=True)
class ProcessorMetadata(Model):
    """What one processor bound under a topic prefix handles and emits."""

    __ce_type__: ClassVar[str | None] = "com.github.aschamberger.microdcs.processor.metadata.v1"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/processor_metadata.schema.json#/$defs/ProcessorMetadata"
    )

    #: The processor's name.
    processor: str
    #: Northbound faces the MES (takes commands), southbound faces equipment (takes data, events and
    #: metadata).
    direction: ProcessorDirection
    #: The topic prefix it is bound under.
    prefix: str
    #: The CloudEvent types it takes, with their responses.
    handles: list[EventTypeInfo]
    #: True when it takes every CloudEvent type (the equipment processor); `handles` then lists
    #: none.
    handles_any_type: bool | None = None
    #: The CloudEvent types it sends besides responses and error events.
    emits: list[EventTypeInfo]
    #: True when it sends types not known in advance (commands named by a recipe); `emits` lists the
    #: known ones.
    emits_any_type: bool | None = None
