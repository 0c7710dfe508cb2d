"""The plant data processor: tag configuration and reads on ``{prefix}/{scope}/commands``,
data events on ``{prefix}/{scope}/data``, over MQTT and MessagePack-RPC.

Tag configuration (``...config.tag.v1``) follows the station configuration: PUT (the
default CloudEvent ``method``) stores a definition, DELETE removes it with its value;
there is no response, and an invalid one raises an input error, which the transport turns
into an error response (or event) with ``mdcserrorkind``, nothing stored. A data event
(``...tag.data.v1``) has no response either: bad samples give one error event naming
each, and nothing of the event is stored. A read (``...tag.read.v1``) answers with the
samples asked for and the names the scope does not configure.

Data events skip the model decoding of the other handlers (see :mod:`.samples`): the
payload is decoded to plain values and checked sample by sample.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgpack
import orjson

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.contenttypes import is_json, is_msgpack
from microdcs.core.errors import PayloadDecodeError
from microdcs.jobs.contract import scope_name
from microdcs.plantdata.samples import DATA_TYPE
from microdcs.plantdata.table import CurrentValueTable
from microdcs.plantdata.tags import check_tag_name, definition_from_config, sample_raw
from microdcs.processing.configevents import config_method
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction, Intent
from microdcs_models.plant_data import PlantData
from microdcs_models.plant_read import TagCurrentValue, TagReadRequest, TagReadResponse
from microdcs_models.plant_tag_config import PlantTagConfig


def decode_payload(data: bytes | None, content_type: str | None) -> Any:
    """A data event's payload as plain values (JSON or msgpack)."""
    if is_msgpack(content_type):
        try:
            return msgpack.unpackb(data or b"\xc0", raw=False)
        except (ValueError, msgpack.UnpackException, msgpack.ExtraData) as exc:
            raise PayloadDecodeError(f"payload is not valid msgpack: {exc}") from None
    if content_type is None or is_json(content_type):
        try:
            return orjson.loads(data or b"null")
        except orjson.JSONDecodeError as exc:
            raise PayloadDecodeError(f"payload is not valid JSON: {exc}") from None
    raise PayloadDecodeError(f"content type {content_type!r} cannot be decoded")


class PlantDataProcessor(CloudEventProcessor):
    """Tag configuration, data events and reads of every scope's current value table."""

    direction: ClassVar[Direction] = Direction.NORTHBOUND
    default_prefix: ClassVar[str] = "app/plant"
    #: Commands (configuration, reads) and data events in; error events out on ``events``.
    subscribe_intents: ClassVar[tuple[Intent, ...] | None] = (Intent.COMMANDS, Intent.DATA)
    publish_intents: ClassVar[tuple[Intent, ...] | None] = (Intent.EVENTS,)

    def __init__(self, table: CurrentValueTable, *, source: str = "microdcs") -> None:
        super().__init__(source=source)
        self.table = table

    async def dispatch(self, event: CloudEvent, context: MessageContext) -> list[CloudEvent]:
        if event.type == DATA_TYPE:  # the hot path: no model, no response
            payload = decode_payload(event.data, event.datacontenttype)
            await self.table.ingest(scope_name(context.subject), payload)
            return []
        return await super().dispatch(event, context)

    @handles(PlantData, deduplicate=False)
    async def data(self, message: PlantData, context: MessageContext) -> None:
        """Declared for the metadata and the AsyncAPI document; :meth:`dispatch` takes
        data events before they reach it (a direct call still stores them). No dedupe:
        storing is idempotent (``ingest.lua`` never lets an older or repeated sample
        replace the stored one), so a redelivered copy stores and tells nothing."""
        await self.table.ingest(scope_name(context.subject), message.to_raw())

    @handles(PlantTagConfig)
    async def config_tag(self, message: PlantTagConfig, context: MessageContext) -> None:
        method = config_method(context)
        scope = scope_name(context.subject)
        if method == "DELETE":
            await self.table.delete_definition(scope, check_tag_name(message.name))
            return
        await self.table.put_definition(scope, definition_from_config(message))

    @handles(TagReadRequest)
    async def read(self, message: TagReadRequest, context: MessageContext) -> TagReadResponse:
        samples = await self.table.read(scope_name(context.subject), message.tags)
        return TagReadResponse(
            samples=[TagCurrentValue.from_raw(sample_raw(samples[t])) for t in message.tags
                     if t in samples],
            unknown=[t for t in message.tags if t not in samples],
        )  # fmt: skip
