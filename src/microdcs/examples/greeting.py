"""The greeting echo: the smallest useful processor, used by the README and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from microdcs.models import Model, hidden
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction

GREETING_TYPE = "com.github.aschamberger.microdcs.greeting.v1"
SCHEMA = "https://github.com/aschamberger/microdcs/schemas/greeting.schema.json"


@dataclass(kw_only=True)
class GreetingResponse(Model):
    __ce_type__: ClassVar[str] = GREETING_TYPE
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA}#/$defs/GreetingResponse"

    greeting: str
    name: str
    _trace_tag: str | None = hidden()


@dataclass(kw_only=True)
class Greeting(Model):
    __ce_type__: ClassVar[str] = GREETING_TYPE
    __ce_dataschema__: ClassVar[str] = f"{SCHEMA}#/$defs/Greeting"
    __response_type__ = GreetingResponse
    __response_copy__ = ("name",)

    name: str
    _trace_tag: str | None = hidden()


class GreetingProcessor(CloudEventProcessor):
    """Answers every greeting with a greeting."""

    direction = Direction.NORTHBOUND
    default_prefix = "app/greeting"

    @handles(Greeting)
    async def greet(self, message: Greeting, context: MessageContext) -> Model:
        return message.response(greeting=f"Hello, {message.name}!")
