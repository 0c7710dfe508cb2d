"""A processor that takes its time, for shutdown and redelivery tests (loaded by
``microdcs run --processor tests.integration.slow_processor:bind``)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import ClassVar

from microdcs.app.binder import Binder
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles

SLOW_TYPE = "com.example.test.slow.v1"


@dataclass(kw_only=True)
class SlowDone(Model):
    __ce_type__: ClassVar[str] = SLOW_TYPE
    n: int
    pid: int


@dataclass(kw_only=True)
class SlowWork(Model):
    __ce_type__: ClassVar[str] = SLOW_TYPE
    n: int
    seconds: float


class SlowProcessor(CloudEventProcessor):
    default_prefix = "test/slow"

    @handles(SlowWork)
    async def work(self, message: SlowWork, context: MessageContext) -> Model:
        await asyncio.sleep(message.seconds)
        return SlowDone(n=message.n, pid=os.getpid())


def bind(binder: Binder) -> None:
    prefix = os.environ.get("TEST_SLOW_PREFIX", "test/slow")
    binder.bind(SlowProcessor(source=binder.source), prefix=prefix, rpc=False)
