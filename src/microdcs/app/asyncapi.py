"""An AsyncAPI 3.0 document of the processors a replica binds (``microdcs asyncapi``).

Built from what the runtime itself routes by, so it cannot drift from the wire: each MQTT
binding gives one channel per intent it subscribes to or publishes on
(``{prefix}/{scope}/{intent}``), each :func:`~microdcs.processing.processor.handles`
registration a ``receive`` operation whose reply (the response type) goes to the request's
MQTT Response Topic, and each declared outgoing model (``emitted``, ``@emits``) a ``send``
operation. Payloads are the models' JSON Schemas (:mod:`microdcs.app.schemacatalog`); the
CloudEvents attributes are the message headers, i.e. the MQTT User Properties of binary
mode. Error events and the retained capability metadata are described too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import microdcs
from microdcs.app.binder import ProcessorFactory
from microdcs.app.config import AppConfig
from microdcs.app.schemacatalog import SchemaCatalog, default_directories
from microdcs.core.contenttypes import JSON
from microdcs.models.base import Model
from microdcs.processing.processor import ERROR_EVENT_TYPE, CloudEventProcessor
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.topics import TopicLayout
from microdcs_models.processor_metadata import ProcessorMetadata

if TYPE_CHECKING:
    from microdcs.app.runtime import Runtime

ASYNCAPI_VERSION = "3.0.0"
MQTT_BINDING_VERSION = "0.2.0"
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_-]+")


class BoundProcessor(Protocol):
    """A processor and the topic layout it is bound under (an MQTT binding)."""

    @property
    def processor(self) -> CloudEventProcessor: ...

    @property
    def layout(self) -> TopicLayout: ...


def asyncapi_document(
    bindings: Sequence[BoundProcessor],
    catalog: SchemaCatalog,
    *,
    title: str = "microdcs",
    version: str = microdcs.__version__,
    server: tuple[str, int, bool] | None = None,
) -> dict[str, Any]:
    """The document of ``bindings``; ``server`` is the broker's host, port and TLS flag."""
    builder = _Builder(catalog)
    for binding in bindings:
        builder.add(binding.processor, binding.layout)
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "CloudEvents over MQTT v5 (binary mode: the attributes are User Properties, "
                "datacontenttype the Content Type, expiryinterval the Message Expiry "
                "Interval). A request with a Response Topic and Correlation Data is answered "
                "there; one without on the processor's default intent. Payloads are JSON, "
                "or MessagePack where the request's Content Type is application/msgpack."
            ),
        },
        "defaultContentType": JSON,
    }
    if server is not None:
        host, port, tls = server
        document["servers"] = {
            "broker": {
                "host": f"{host}:{port}",
                "protocol": "secure-mqtt" if tls else "mqtt",
                "protocolVersion": "5",
                "description": "The MQTT v5 broker the replicas and their clients share.",
            }
        }
    document["channels"] = builder.channels
    document["operations"] = builder.operations
    document["components"] = {"messages": builder.messages, "schemas": catalog.components}
    return document


def asyncapi_for_runtime(
    runtime: Runtime, schema_directories: Sequence[Path] = ()
) -> dict[str, Any]:
    """The document of what ``runtime`` has bound over MQTT, with its broker as server.

    What the HTTP endpoint serves (``/asyncapi.json``) and ``microdcs asyncapi`` prints.
    Schemas are looked up in ``schema_directories``, then in :func:`default_directories`.
    Pure and offline (reads local schema files only), so it can be built per request.
    """
    catalog = SchemaCatalog(default_directories(schema_directories))
    mqtt = runtime.config.mqtt
    return asyncapi_document(
        runtime.mqtt.bindings,
        catalog,
        title=f"microdcs ({runtime.config.resolved_source})",
        server=(mqtt.hostname, mqtt.port, mqtt.tls),
    )


async def asyncapi_for_config(
    config: AppConfig,
    factories: Sequence[ProcessorFactory] = (),
    schema_directories: Sequence[Path] = (),
) -> dict[str, Any]:
    """The document of what ``microdcs run`` would bind with ``config`` and ``factories``.

    Wires a replica without running it: nothing is subscribed or published, and Redis
    being down does not matter (only a refused login would be a configuration error).
    """
    from microdcs.app.assembly import open_runtime  # assembly wires the HTTP server: no cycle

    async with open_runtime(config, factories) as runtime:
        return asyncapi_for_runtime(runtime, schema_directories)


class _Builder:
    """Collects channels, operations and messages; each model becomes one message."""

    def __init__(self, catalog: SchemaCatalog) -> None:
        self._catalog = catalog
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self._keys: dict[tuple[object, ...], str] = {}
        self._addresses: dict[str, str] = {}  # channel address -> its key

    def add(self, processor: CloudEventProcessor, layout: TopicLayout) -> None:
        slug = _key(layout.prefix)
        capabilities = processor.capabilities()
        handled = processor.handler_models()
        for intent in processor.subscribes:
            channel = self._channel(slug, layout, intent)
            for event_type, model in sorted(handled.items()):
                self._receive(slug, processor, channel, intent, event_type, model)
            if capabilities.handles_any_type:
                message = self._generic("AnyEvent", "any CloudEvent type", None)
                self._operation(
                    f"{slug}_{intent.value}_receive_any",
                    "receive",
                    channel,
                    message,
                    f"{processor.name} takes events of any type on {intent.value}.",
                )
        default = processor.default_intent
        for model in processor.emitted_models():
            channel = self._channel(slug, layout, default)
            message = self._message(model, model.__ce_type__ or "")
            self._operation(
                f"{slug}_send_{message}",
                "send",
                channel,
                message,
                f"{processor.name} publishes {model.__ce_type__} (declared).",
            )
        if capabilities.emits_any_type:
            channel = self._channel(slug, layout, default)
            message = self._generic("AnyEvent", "any CloudEvent type", None)
            self._operation(
                f"{slug}_send_any",
                "send",
                channel,
                message,
                f"{processor.name} sends events of any type on {default.value}.",
            )
        self._errors(slug, processor, layout)
        self._metadata(slug, processor, layout)

    # -- operations ---------------------------------------------------------------------
    def _receive(
        self,
        slug: str,
        processor: CloudEventProcessor,
        channel: str,
        intent: Intent,
        event_type: str,
        model: type[Model],
    ) -> None:
        request = self._message(model, event_type, request=True)
        operation = self._operation(
            f"{slug}_{intent.value}_receive_{request}",
            "receive",
            channel,
            request,
            f"{processor.name} handles {event_type} ({model.__name__}).",
        )
        response_model = model.__response_type__
        if response_model is None:
            return
        replies = f"{slug}_responses"
        self.channels.setdefault(
            replies,
            {
                "address": None,
                "title": f"Responses of {processor.name}",
                "description": (
                    "The MQTT Response Topic the request names (its Correlation Data comes "
                    "back unchanged). A request naming none is answered on the processor's "
                    "default intent topic in the request's scope."
                ),
                "messages": {},
            },
        )
        response = self._message(response_model, response_model.__ce_type__ or event_type)
        error = self._error_message()
        for name in (response, error):
            self.channels[replies]["messages"][name] = _ref("components/messages", name)
        operation["reply"] = {
            "channel": _ref("channels", replies),
            "messages": [_ref(f"channels/{replies}/messages", name) for name in (response, error)],
        }

    def _operation(
        self, key: str, action: str, channel: str, message: str, summary: str
    ) -> dict[str, Any]:
        self.channels[channel]["messages"][message] = _ref("components/messages", message)
        operation: dict[str, Any] = {
            "action": action,
            "channel": _ref("channels", channel),
            "summary": summary,
            "messages": [_ref(f"channels/{channel}/messages", message)],
            "bindings": {"mqtt": {"qos": 1, "bindingVersion": MQTT_BINDING_VERSION}},
        }
        self.operations[_key(key)] = operation
        return operation

    def _errors(self, slug: str, processor: CloudEventProcessor, layout: TopicLayout) -> None:
        intent = processor.direction.error_intent
        channel = self._channel(slug, layout, intent)
        self._operation(
            f"{slug}_send_error",
            "send",
            channel,
            self._error_message(),
            f"{processor.name} reports received events it could not handle.",
        )

    def _metadata(self, slug: str, processor: CloudEventProcessor, layout: TopicLayout) -> None:
        channel = self._channel(slug, layout, Intent.METADATA, scoped=False)
        message = self._message(ProcessorMetadata, ProcessorMetadata.__ce_type__ or "")
        operation = self._operation(
            f"{slug}_send_metadata",
            "send",
            channel,
            message,
            f"Retained description of {processor.name}: what it handles and emits.",
        )
        operation["bindings"]["mqtt"]["retain"] = True

    # -- channels and messages ----------------------------------------------------------
    def _channel(
        self, slug: str, layout: TopicLayout, intent: Intent, *, scoped: bool = True
    ) -> str:
        scoped = scoped and layout.max_levels > 0
        address = (
            f"{layout.prefix}/{{scope}}/{intent.value}" if scoped else layout.topic(None, intent)
        )
        known = self._addresses.get(address)
        if known is not None:
            return known
        # A processor subscribing to metadata (southbound) has both the scoped channel
        # and its own retained root topic: two addresses, so two channels.
        key = f"{slug}_{intent.value}"
        if key in self.channels:
            key = f"{key}_root"
        self._addresses[address] = key
        if scoped:
            channel: dict[str, Any] = {
                "address": address,
                "parameters": {
                    "scope": {
                        "description": (
                            f"0 to {layout.max_levels} topic levels, the CloudEvent subject "
                            "with '.' written as '/'; with none the topic is "
                            f"{layout.prefix}/{intent.value} (the root scope)."
                        )
                    }
                },
            }
        else:
            channel = {"address": address}
        channel["title"] = f"{layout.prefix} {intent.value}"
        channel["messages"] = {}
        self.channels[key] = channel
        return key

    def _message(self, model: type[Model], event_type: str, *, request: bool = False) -> str:
        identity = (model, request)
        known = self._keys.get(identity)
        if known is not None:
            return known
        key = self._unique(f"{model.__name__}{'Request' if request else ''}")
        hidden = sorted(model.hidden_fields().values())
        message: dict[str, Any] = {
            "name": model.__name__,
            "title": f"{event_type} ({model.__name__})",
            "contentType": JSON,
            "headers": _headers(event_type, model.__ce_dataschema__, hidden),
            "payload": self._catalog.payload(model),
            "correlationId": {
                "description": "Responses carry the request's correlationid (else its id).",
                "location": "$message.header#/correlationid",
            },
            "bindings": {"mqtt": _message_binding(request)},
        }
        if model.__ce_dataschema__:
            message["description"] = f"Data schema: {model.__ce_dataschema__}"
        self.messages[key] = message
        self._keys[identity] = key
        return key

    def _error_message(self) -> str:
        return self._generic(
            "ErrorEvent",
            "an error event: the request's type (or "
            f"{ERROR_EVENT_TYPE}), no data, mdcserrorkind and mdcserrormessage set",
            ERROR_EVENT_TYPE,
            error=True,
        )

    def _generic(self, name: str, what: str, event_type: str | None, *, error: bool = False) -> str:
        identity = ("generic", name)
        known = self._keys.get(identity)
        if known is not None:
            return known
        headers = _headers(None, None, [])
        if error:
            headers["properties"]["mdcserrorkind"] = {
                "type": "string",
                "description": "What went wrong, stable (invalid_payload, unknown_type, ...).",
            }
            headers["properties"]["mdcserrormessage"] = {
                "type": "string",
                "description": "One line for a person.",
            }
            headers["required"] = [*headers["required"], "mdcserrorkind"]
        message: dict[str, Any] = {
            "name": name,
            "title": name,
            "summary": f"CloudEvent: {what}.",
            "headers": headers,
            "bindings": {"mqtt": _message_binding(False)},
        }
        if not error:
            message["payload"] = {"description": "The event's data, as its type defines."}
        self.messages[name] = message
        self._keys[identity] = name
        return name

    def _unique(self, name: str) -> str:
        key, n = _key(name), 2
        while key in self.messages:
            key, n = f"{_key(name)}_{n}", n + 1
        return key


def _headers(event_type: str | None, dataschema: str | None, hidden: list[str]) -> dict[str, Any]:
    """The CloudEvents attributes as MQTT User Properties (binary mode)."""
    text: dict[str, Any] = {"type": "string"}
    properties: dict[str, Any] = {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {**text, "description": "Unique per source; source and id identify a duplicate."},
        "source": {**text, "description": "The sender (a URI reference)."},
        "type": {"type": "string", "const": event_type} if event_type else text,
        "subject": {**text, "description": "The scope: the topic's scope levels joined by '.'."},
        "time": {"type": "string", "format": "date-time"},
        "correlationid": {**text, "description": "Groups a request with its responses."},
        "causationid": {**text, "description": "The id of the event that caused this one."},
        "traceparent": {**text, "description": "W3C Trace Context."},
        "tracestate": {**text, "description": "W3C Trace Context."},
    }
    if dataschema:
        properties["dataschema"] = {"type": "string", "const": dataschema}
    for name in hidden:
        properties[name] = {**text, "description": "A hidden model field (not in the payload)."}
    if hidden:
        properties["custommetadata"] = {
            **text,
            "contentMediaType": JSON,
            "description": (
                f"The hidden fields ({', '.join(hidden)}) as one JSON object; accepted "
                "instead of one property per field, sent only by processors set to."
            ),
        }
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type"],
        "properties": properties,
    }


def _message_binding(request: bool) -> dict[str, Any]:
    binding: dict[str, Any] = {
        "contentType": JSON,
        "payloadFormatIndicator": 1,
        "bindingVersion": MQTT_BINDING_VERSION,
    }
    if request:
        binding["responseTopic"] = {
            "type": "string",
            "description": "Where the response goes (outside the runtime's own prefixes).",
        }
        binding["correlationData"] = {
            "type": "string",
            "description": "Returned unchanged with the response.",
        }
    return binding


def _ref(where: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{where}/{name}"}


def _key(name: str) -> str:
    return _UNSAFE_KEY.sub("_", name).strip("_") or "_"
