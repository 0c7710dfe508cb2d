"""Issue 15, item 4: every response carries an expiry (MQTT Message Expiry Interval, and
``expiryinterval`` over MessagePack-RPC), as the README promises.

A response gets what is left of its request's expiry; a request without one gets the
processor's ``response_expiry_seconds``, else the runtime's ``APP_RESPONSE_EXPIRY_SECONDS``
(0: none). Events a processor publishes (status events) are not responses and keep theirs.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from typing import ClassVar

import orjson

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from tests.conftest import running
from tests.integration.test_jobs_helpers import SCOPE, STATUS_EVENT, method_type
from tests.integration.test_msgpack_rpc_helpers import greeting_event, raw_client, serving
from tests.mesclient import MesClient, Received, ce_properties, next_message

NAP_TYPE = "com.example.test.expiry.nap.v1"
STATUS_TYPE = "com.example.test.expiry.status.v1"


@dataclass(kw_only=True)
class Nap(Model):
    __ce_type__: ClassVar[str] = NAP_TYPE
    seconds: float = 0.0


@dataclass(kw_only=True)
class Status(Model):
    __ce_type__: ClassVar[str] = STATUS_TYPE
    note: str


class NapProcessor(CloudEventProcessor):
    """Answers after a nap, publishing a status event first; its responses to requests
    without an expiry live 5 s."""

    default_prefix = "test/expiry/nap"
    response_expiry_seconds = 5

    @handles(Nap)
    async def nap(self, message: Nap, context: MessageContext) -> Model:
        await self.publish(Status(note="napping"), subject=context.subject)
        await asyncio.sleep(message.seconds)
        return message


def _bind_nap(prefix: str) -> object:
    def bind(binder: Binder) -> None:
        binder.bind(NapProcessor(source=binder.source), prefix=prefix, rpc=False)

    return bind


async def _request(
    mes: MesClient, topic: str, ce_type: str, data: object, *, expiry: int | None = None
) -> Received:
    """A binary-mode request with an optional Message Expiry Interval; its response."""
    replies = await mes.watch(mes.response_topic)
    correlation = uuid.uuid4().bytes
    props = ce_properties(ce_type, response_topic=mes.response_topic, correlation_data=correlation)
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    await mes.publish(topic, orjson.dumps(data), props)
    while True:
        reply = await next_message(replies)
        if reply.correlation_data == correlation:
            return reply


async def test_a_response_gets_what_is_left_of_the_request_expiry(config: AppConfig) -> None:
    prefix = f"test/expiry/{uuid.uuid4().hex[:6]}"
    async with running(config, [_bind_nap(prefix)]), MesClient(config.mqtt.port) as mes:
        quick = await _request(mes, f"{prefix}/commands", NAP_TYPE, {}, expiry=30)
        slow = await _request(mes, f"{prefix}/commands", NAP_TYPE, {"seconds": 1.2}, expiry=30)
    assert quick.expiry is not None and 0 < quick.expiry <= 30
    # 1.2 s of its 30 s went by in the handler: 28 whole seconds are left at most.
    assert slow.expiry is not None and 0 < slow.expiry <= 28


async def test_a_response_to_a_request_without_expiry_gets_the_runtime_default(
    config: AppConfig,
) -> None:
    topic = f"{config.greeting_prefix}/commands"
    short = replace(config, response_expiry_seconds=7)
    async with running(short), MesClient(config.mqtt.port) as mes:
        reply = await _request(mes, topic, GREETING_TYPE, {"name": "Ada"})
    assert reply.json()["greeting"] == "Hello, Ada!"
    assert reply.expiry == 7


async def test_the_runtime_default_is_60_seconds(config: AppConfig) -> None:
    topic = f"{config.greeting_prefix}/commands"
    async with running(config), MesClient(config.mqtt.port) as mes:
        reply = await _request(mes, topic, GREETING_TYPE, {"name": "Ada"})
    assert reply.expiry == 60


async def test_a_processor_default_beats_the_runtime_default_which_0_turns_off(
    config: AppConfig,
) -> None:
    prefix = f"test/expiry/{uuid.uuid4().hex[:6]}"
    never = replace(config, response_expiry_seconds=0)
    async with running(never, [_bind_nap(prefix)]), MesClient(config.mqtt.port) as mes:
        own = await _request(mes, f"{prefix}/commands", NAP_TYPE, {})
        runtime_wide = await _request(
            mes, f"{config.greeting_prefix}/commands", GREETING_TYPE, {"name": "Ada"}
        )
    assert own.expiry == NapProcessor.response_expiry_seconds
    assert runtime_wide.expiry is None


async def test_published_status_events_are_not_responses_and_keep_no_expiry(
    config: AppConfig,
) -> None:
    prefix = f"test/expiry/{uuid.uuid4().hex[:6]}"
    async with running(config, [_bind_nap(prefix)]), MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{prefix}/events")
        reply = await _request(mes, f"{prefix}/commands", NAP_TYPE, {}, expiry=30)
        status = await next_message(events)
    assert reply.expiry is not None
    assert status.attributes["type"] == STATUS_TYPE
    assert status.expiry is None


async def test_a_job_method_response_expires_but_its_status_event_and_retained_order_do_not(
    config: AppConfig,
) -> None:
    station = f"{config.jobs_prefix}/{SCOPE}"
    job = {"JobOrder": {"JobOrderID": f"exp-{uuid.uuid4().hex[:6]}"}}
    async with running(config), MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{station}/events")
        orders = await mes.watch(f"{station}/order/+")
        reply = await _request(mes, f"{station}/commands", method_type("Store"), job, expiry=30)
        status = await next_message(events)
        retained = await next_message(orders)
    assert reply.json()["ReturnStatus"] == 1
    assert reply.expiry is not None and 0 < reply.expiry <= 30
    assert status.attributes["type"] == STATUS_EVENT
    assert status.expiry is None
    assert retained.expiry is not None and retained.expiry > 30  # its own, 172800 s


async def test_rpc_responses_carry_expiryinterval_from_the_request_or_the_default() -> None:
    processors: list[CloudEventProcessor] = [GreetingProcessor(source="microdcs/test")]
    async with serving(processors=processors) as server, raw_client(server.port) as client:
        with_expiry = await client.call(1, "publish", greeting_event("Ada", expiryinterval=30))
        without = await client.call(2, "publish", greeting_event("Bob"))
    [answer] = with_expiry[3]
    assert answer["data"]["greeting"] == "Hello, Ada!"
    assert 0 < answer["expiryinterval"] <= 30
    [default] = without[3]
    assert default["expiryinterval"] == 60
