"""Processor API parity on the wire (issue 20, item 4), against real Mosquitto and Redis:
a declared event goes out and an undeclared one is refused, overridden intents are what
the replica subscribes and publishes, the handler gets the asset ID from the topic's
scope, and hidden fields arrive in either form and leave in the processor's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.models import Model, hidden
from microdcs.processing.processor import (
    CloudEventProcessor,
    MessageContext,
    asset_id_from_subject,
    emits,
    handles,
)
from microdcs.processing.routing import Intent
from tests.conftest import running
from tests.mesclient import MesClient, next_message

BASE = "com.example.test.parity"


@dataclass(kw_only=True)
class Loaded(Model):
    __ce_type__: ClassVar[str] = f"{BASE}.loaded.v1"
    asset: str | None = None
    _lot_ref: str | None = hidden()


@dataclass(kw_only=True)
class Unloaded(Model):
    __ce_type__: ClassVar[str] = f"{BASE}.unloaded.v1"
    asset: str | None = None


@dataclass(kw_only=True)
class Load(Model):
    __ce_type__: ClassVar[str] = f"{BASE}.load.v1"
    __response_type__ = Loaded
    undeclared: bool = False
    _lot_ref: str | None = hidden()


class Loader(CloudEventProcessor):
    """Publishes Loaded (declared); asked to, also Unloaded (not declared)."""

    @emits(Loaded)
    @asset_id_from_subject
    @handles(Load)
    async def load(self, message: Load, context: MessageContext, *, asset_id: Any) -> Model:
        await self.publish(Loaded(asset=asset_id), subject=context.subject)
        if message.undeclared:
            await self.publish(Unloaded(asset=asset_id), subject=context.subject)
        return message.response(asset=asset_id)


class DataLoader(Loader):
    """The same handler, taking requests on ``data`` (not ``commands``) and publishing
    only on ``events``."""

    subscribe_intents = (Intent.DATA,)
    publish_intents = (Intent.EVENTS,)


class BundlingLoader(Loader):
    hidden_fields_as = "custommetadata"


def _factory(processor: type[Loader], prefix: str) -> Any:
    def bind(binder: Binder) -> None:
        binder.bind(processor(source=binder.source), prefix=prefix, rpc=False)

    return bind


def _prefix(config: AppConfig, name: str) -> str:
    return config.greeting_prefix.replace("greeting", name)


async def test_a_declared_event_goes_out_and_the_asset_id_is_the_last_scope_level(
    config: AppConfig,
) -> None:
    prefix = _prefix(config, "loader")
    async with running(config, [_factory(Loader, prefix)]), MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{prefix}/+/+/events")
        response = await mes.request(f"{prefix}/plant1/oven7/commands", Load.__ce_type__, {})
        event = await next_message(events)
    assert response.attributes["type"] == Loaded.__ce_type__
    assert "mdcserrorkind" not in response.attributes
    assert response.json() == {"asset": "oven7"}
    assert event.topic == f"{prefix}/plant1/oven7/events"
    assert event.attributes["type"] == Loaded.__ce_type__


async def test_publishing_an_undeclared_event_is_answered_invalid_outgoing(
    config: AppConfig,
) -> None:
    prefix = _prefix(config, "loader")
    async with running(config, [_factory(Loader, prefix)]), MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{prefix}/#")
        response = await mes.request(
            f"{prefix}/cell/commands", Load.__ce_type__, {"undeclared": True}
        )
        seen = [await next_message(events)]  # the declared Loaded, published before
    assert response.attributes["mdcserrorkind"] == "invalid_outgoing"
    assert "Unloaded" in response.attributes["mdcserrormessage"]
    assert "declares only Loaded" in response.attributes["mdcserrormessage"]
    assert all(m.attributes.get("type") != Unloaded.__ce_type__ for m in seen)


async def test_overridden_intents_are_subscribed_and_published(config: AppConfig) -> None:
    prefix = _prefix(config, "dataloader")
    async with (
        running(config, [_factory(DataLoader, prefix)]) as runtime,
        MesClient(config.mqtt.port) as mes,
    ):
        events = await mes.watch(f"{prefix}/+/events")
        response = await mes.request(f"{prefix}/cell/data", Load.__ce_type__, {})
        published = await next_message(events)
        filters = runtime.mqtt.router.request_filters(None)
    assert response.json() == {"asset": "cell"}
    assert published.topic == f"{prefix}/cell/events"
    assert published.attributes["type"] == Loaded.__ce_type__
    assert f"{prefix}/+/data" in filters
    assert not any(f.startswith(prefix) and f.endswith("/commands") for f in filters)


async def test_hidden_fields_arrive_in_either_form_and_leave_in_the_processors(
    config: AppConfig,
) -> None:
    plain, bundling = _prefix(config, "plain"), _prefix(config, "bundling")
    factories = [_factory(Loader, plain), _factory(BundlingLoader, bundling)]
    lot = uuid.uuid4().hex
    bundled = orjson.dumps({"lotref": lot}).decode()
    async with running(config, factories), MesClient(config.mqtt.port) as mes:
        from_bundle = await mes.request(
            f"{plain}/cell/commands", Load.__ce_type__, {}, extra={"custommetadata": bundled}
        )
        from_field = await mes.request(
            f"{bundling}/cell/commands", Load.__ce_type__, {}, extra={"lotref": lot}
        )
    # The default processor read the bundle and answers one attribute per field...
    assert from_bundle.attributes["lotref"] == lot
    assert "custommetadata" not in from_bundle.attributes
    # ...the bundling one read the field and answers one custommetadata.
    assert orjson.loads(from_field.attributes["custommetadata"]) == {"lotref": lot}
    assert "lotref" not in from_field.attributes
