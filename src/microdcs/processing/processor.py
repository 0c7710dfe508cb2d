"""Typed CloudEvent processors.

A processor declares one handler per incoming CloudEvent type with :func:`handles`. The
framework decodes the data into the handler's model, calls it, and turns the returned
model (or models) into response CloudEvents with ``correlationid``, ``causationid``,
``subject`` and ``source`` filled in; transports route them and give them their expiry
(:mod:`~microdcs.processing.expiry`). Handlers never see bytes, topics or acknowledgements.

What a processor sends besides responses is declared (:func:`emits` or the ``emitted``
class attribute): the declaration feeds the capability metadata and the AsyncAPI
document, and :meth:`CloudEventProcessor.publish` refuses a type it does not list, so the
documentation cannot drift from what goes on the wire.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import msgpack
import orjson

from microdcs.core.cloudevent import (
    CAUSATION_ID,
    CORRELATION_ID,
    ERROR_KIND,
    ERROR_MESSAGE,
    EXPIRY_INTERVAL,
    CloudEvent,
    ExtensionValue,
    now_timestamp,
)
from microdcs.core.contenttypes import JSON, is_msgpack
from microdcs.core.errors import InputError, OutgoingEventError, UnknownEventTypeError
from microdcs.core.tracing import Tracing
from microdcs.core.wiretext import sanitize_text
from microdcs.models.base import MAX_NESTING_DEPTH, Model
from microdcs.processing.capabilities import (
    Capabilities,
    declared_emits,
    emits,
    emitted_type,
    handled_type,
)
from microdcs.processing.routing import Direction, Intent, scope_levels

__all__ = [
    "CloudEventProcessor",
    "EventSink",
    "MessageContext",
    "ResponseContext",
    "UndeclaredEventError",
    "asset_id_from_subject",
    "emits",
    "error_event",
    "handles",
    "handles_response",
]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Model)
HandlerResult = Model | Sequence[Model] | None
Handler = Callable[[Any, Any, "MessageContext"], Awaitable[HandlerResult]]
ResponseHandler = Callable[[Any, Any, "ResponseContext"], Awaitable[None]]

#: CloudEvent type of error events that have no request type to echo.
ERROR_EVENT_TYPE = "com.github.aschamberger.microdcs.error.v1"


@dataclass(slots=True)
class MessageContext:
    """What a handler may know about the event besides its typed data."""

    event: CloudEvent
    transport: str
    intent: Intent | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Where the event arrived (the MQTT topic), for traces and logs.
    destination: str | None = None
    #: Deepest payload nesting the transport accepts (``APP_LIMIT_NESTING_DEPTH``).
    max_depth: int = MAX_NESTING_DEPTH
    #: Set by a handler whose own stored state showed the event to be a copy of one it
    #: handled before (a Store whose job remembers the request that stored it): the
    #: pipeline counts and logs it as a duplicate, like the copies its registry finds.
    repeated: bool = False

    @property
    def subject(self) -> str | None:
        return self.event.subject

    @property
    def scope(self) -> tuple[str, ...]:
        """The subject's scope levels (``plant1.line2`` -> ``("plant1", "line2")``)."""
        return scope_levels(self.event.subject)

    @property
    def asset_id(self) -> str | None:
        """The asset the event concerns: the last (most specific) scope level of the
        subject, ``None`` for the root scope."""
        levels = self.scope
        return levels[-1] if levels else None


@dataclass(slots=True)
class ResponseContext:
    """A response to a request this processor sent, with that request."""

    response: CloudEvent
    request: CloudEvent


class EventSink(Protocol):
    """Where a processor's outgoing events go: one per transport binding."""

    async def emit(self, event: CloudEvent, intent: Intent, *, expect_response: bool) -> None:
        """Send ``event``; with ``expect_response`` track it for a response or expiry."""
        ...


@dataclass(frozen=True, slots=True)
class _HandlerSpec:
    event_type: str
    model: type[Model]
    method_name: str


class UndeclaredEventError(OutgoingEventError):
    """A processor published a type (or on an intent) it does not declare: the metadata
    and the AsyncAPI document would not tell its consumers about it."""


#: How hidden fields travel on the events a processor builds (both are accepted when
#: received): one extension attribute per field, or all in one ``custommetadata``.
HiddenFieldsForm = Literal["extensions", "custommetadata"]


def asset_id_from_subject(
    func: Any = None,
    *,
    name: str = "asset_id",
    level: int = -1,
    factory: Callable[[str], Any] | None = None,
) -> Any:
    """Pass the asset ID from the event's subject to the handler as keyword ``name``.

    The ID is scope level ``level`` of the subject (the last, most specific one by
    default), turned into another type by ``factory`` when given; ``None`` when the
    subject has no such level. Stack it above or below :func:`handles`::

        @asset_id_from_subject
        @handles(StartBatch)
        async def start(self, message, context, *, asset_id: str | None) -> Model: ...

    :attr:`MessageContext.asset_id` gives the same without a decorator.
    """

    def decorate(handler: Any) -> Any:
        @functools.wraps(handler)
        async def with_asset_id(
            self: Any, message: Any, context: MessageContext, **kwargs: Any
        ) -> Any:
            levels = context.scope
            try:
                raw: str | None = levels[level]
            except IndexError:
                raw = None
            kwargs[name] = raw if raw is None or factory is None else factory(raw)
            return await handler(self, message, context, **kwargs)

        return with_asset_id

    return decorate(func) if func is not None else decorate


def _is_decorated(member: object) -> bool:
    return hasattr(member, "_mdcs_handles") or hasattr(member, "_mdcs_handles_response")


def handles(
    model: type[M], *, event_type: str | None = None, deduplicate: bool = True
) -> Callable[[Any], Any]:
    """Declare the decorated method the handler of incoming events of ``model``'s type.

    ``deduplicate=False`` skips the transport's dedupe claim and record for this type:
    for a handler whose effect is idempotent (storing a sample that never replaces a
    newer one), where a redelivered copy is harmless and a Redis write per event is not.
    """
    resolved = event_type or model.__ce_type__
    if not resolved:
        raise TypeError(f"{model.__name__} has no __ce_type__; pass event_type=")

    def decorate(func: Any) -> Any:
        func._mdcs_handles = (resolved, model)
        func._mdcs_deduplicate = deduplicate
        return func

    return decorate


def handles_response(model: type[M], *, event_type: str | None = None) -> Callable[[Any], Any]:
    """Declare the handler of responses (of ``model``) to requests this processor sent."""
    resolved = event_type or model.__ce_type__
    if not resolved:
        raise TypeError(f"{model.__name__} has no __ce_type__; pass event_type=")

    def decorate(func: Any) -> Any:
        func._mdcs_handles_response = (resolved, model)
        return func

    return decorate


class CloudEventProcessor:
    """Base class of processors; subclass it and decorate handlers with :func:`handles`."""

    direction: ClassVar[Direction] = Direction.NORTHBOUND
    #: Topic prefix used when the application binds without naming one.
    default_prefix: ClassVar[str] = "app"
    #: Content type of outgoing events that are not responses.
    content_type: ClassVar[str] = JSON
    #: Models of the events it sends besides responses and error events (what
    #: :meth:`publish` and :meth:`send_request` carry), listed in its capability metadata;
    #: :func:`emits` on the class or on a handler adds to it. When any are declared,
    #: publishing another type raises :class:`UndeclaredEventError`.
    emitted: ClassVar[tuple[type[Model], ...]] = ()
    #: Intents it subscribes to and publishes on; ``None`` takes its direction's
    #: (:attr:`Direction.subscribes`, :attr:`Direction.publishes`). The constructor's
    #: arguments of the same names override these per instance.
    subscribe_intents: ClassVar[tuple[Intent, ...] | None] = None
    publish_intents: ClassVar[tuple[Intent, ...] | None] = None
    #: How hidden model fields travel on the events it builds: one extension attribute
    #: per field (the default, see docs/processors.md) or one ``custommetadata``.
    hidden_fields_as: ClassVar[HiddenFieldsForm] = "extensions"
    #: Message Expiry (s) of its responses to requests that carry none (a request with an
    #: expiry gets what is left of it): ``None`` takes the runtime's
    #: ``APP_RESPONSE_EXPIRY_SECONDS``, 0 means its responses never expire.
    response_expiry_seconds: ClassVar[int | None] = None

    _mdcs_handlers: ClassVar[dict[str, _HandlerSpec]] = {}
    #: Handled types declared with ``handles(..., deduplicate=False)``.
    _mdcs_undeduplicated: ClassVar[frozenset[str]] = frozenset()
    _mdcs_response_handlers: ClassVar[dict[str, _HandlerSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Resolve by method name along the MRO, so a subclass that re-decorates a method
        # for another type drops the old type, and an undecorated override keeps it.
        incoming: dict[str, tuple[str, type[Model]]] = {}
        responses: dict[str, tuple[str, type[Model]]] = {}
        undeduplicated: set[str] = set()  # method names
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                for attribute, table in (
                    ("_mdcs_handles", incoming),
                    ("_mdcs_handles_response", responses),
                ):
                    spec = getattr(member, attribute, None)
                    if spec is not None:
                        table[name] = spec
                        if table is incoming:
                            if getattr(member, "_mdcs_deduplicate", True):
                                undeduplicated.discard(name)
                            else:
                                undeduplicated.add(name)
                    elif name in table and _is_decorated(member):
                        del table[name]
        cls._mdcs_undeduplicated = frozenset(
            incoming[name][0] for name in undeduplicated if name in incoming
        )
        cls._mdcs_handlers = {
            t: _HandlerSpec(t, model, name) for name, (t, model) in incoming.items()
        }
        cls._mdcs_response_handlers = {
            t: _HandlerSpec(t, model, name) for name, (t, model) in responses.items()
        }

    def __init__(
        self,
        *,
        source: str = "microdcs",
        name: str | None = None,
        subscribe_intents: Sequence[Intent] | None = None,
        publish_intents: Sequence[Intent] | None = None,
    ) -> None:
        self.source = source
        self.name = name or type(self).__name__
        self._sinks: list[EventSink] = []
        cls = type(self)
        self.subscribes: tuple[Intent, ...] = _intents(
            "subscribe_intents",
            subscribe_intents,
            cls.subscribe_intents,
            self.direction.subscribes,
        )
        self.publishes: tuple[Intent, ...] = _intents(
            "publish_intents", publish_intents, cls.publish_intents, self.direction.publishes
        )

    # -- wiring -----------------------------------------------------------------
    @property
    def event_types(self) -> frozenset[str]:
        """The incoming CloudEvent types this processor handles."""
        return frozenset(self._mdcs_handlers)

    def attach_sink(self, sink: EventSink) -> None:
        """Called by a transport binding: outgoing events of this processor go there too."""
        self._sinks.append(sink)

    def handles_type(self, event_type: str) -> bool:
        return event_type in self._mdcs_handlers

    def deduplicates(self, event_type: str) -> bool:
        """False for a type its handler declared ``deduplicate=False``: the pipeline and
        the transports then neither claim nor record its events for dedupe."""
        return event_type not in self._mdcs_undeduplicated

    @property
    def default_intent(self) -> Intent:
        """Where responses and published events go unless a caller says otherwise: the
        direction's default when it publishes there, else its first published intent."""
        default = self.direction.default_intent
        return default if default in self.publishes else self.publishes[0]

    @classmethod
    def emitted_models(cls) -> tuple[type[Model], ...]:
        """Every declared outgoing model: :attr:`emitted` and the :func:`emits` of the
        class and its handlers, in declaration order, each once."""
        return declared_emits(cls)

    @classmethod
    def handler_models(cls) -> dict[str, type[Model]]:
        """Incoming CloudEvent type -> the model its handler decodes (for documentation)."""
        return {t: spec.model for t, spec in cls._mdcs_handlers.items()}

    def capabilities(self) -> Capabilities:
        """What it handles (its :func:`handles` registrations) and emits (its declared
        outgoing models), for the retained metadata; a processor that takes any type
        overrides it."""
        return Capabilities(
            handles=tuple(
                handled_type(t, spec.model) for t, spec in sorted(self._mdcs_handlers.items())
            ),
            emits=tuple(emitted_type(model) for model in self.emitted_models()),
        )

    def check_outgoing(self, message: Model, intent: Intent) -> None:
        """Raise :class:`UndeclaredEventError` unless ``message`` may be sent on ``intent``:
        its type among the declared ones (when any are declared) and the intent among
        those it publishes on."""
        self._check_type(type(message), intent)

    def _check_type(self, model: type[Model], intent: Intent) -> None:
        declared = self.emitted_models()
        if declared and not issubclass(model, declared):
            event_type = model.__ce_type__
            if all(known.__ce_type__ != event_type for known in declared):
                names = ", ".join(m.__name__ for m in declared)
                raise UndeclaredEventError(
                    f"{self.name} publishes {model.__name__} ({event_type}) but "
                    f"declares only {names}: add it with @emits or to emitted"
                )
        if intent not in self.publishes:
            raise UndeclaredEventError(
                f"{self.name} publishes on {', '.join(self.publishes)}, not on {intent}"
            )

    # -- incoming -----------------------------------------------------------------
    async def dispatch(self, event: CloudEvent, context: MessageContext) -> list[CloudEvent]:
        """Decode, call the handler and build the response events.

        Raises :class:`InputError` subclasses for events that cannot be handled, unless
        :meth:`on_invalid` turns the error into a typed response.
        """
        spec = self._mdcs_handlers.get(event.type)
        if spec is None:
            raise UnknownEventTypeError(f"no handler for CloudEvent type {event.type!r}")
        try:
            message = spec.model.decode(
                event.data, event.datacontenttype, max_depth=context.max_depth
            )
        except InputError as error:
            return self.invalid_response(event, error)
        message.restore_hidden(event.extensions)
        handler: Handler = getattr(type(self), spec.method_name)
        result = await handler(self, message, context)
        if result is None:
            return []
        if isinstance(result, Model):
            return [self.response_event(event, result)]
        return [self.response_event(event, item) for item in result]

    async def dispatch_response(
        self, response: CloudEvent, request: CloudEvent, *, max_depth: int = MAX_NESTING_DEPTH
    ) -> None:
        """Route a response to a request we sent: typed handler, else :meth:`on_response`."""
        spec = self._mdcs_response_handlers.get(response.type)
        if spec is None:
            await self.on_response(response, request)
            return
        message = spec.model.decode(response.data, response.datacontenttype, max_depth=max_depth)
        message.restore_hidden(response.extensions)
        handler: ResponseHandler = getattr(type(self), spec.method_name)
        await handler(self, message, ResponseContext(response=response, request=request))

    def invalid_response(self, event: CloudEvent, error: InputError) -> list[CloudEvent]:
        """The typed answer :meth:`on_invalid` gives for ``error``; re-raises without one."""
        substitute = self.on_invalid(event, error)
        if substitute is None:
            raise error
        response = self.response_event(event, substitute)
        response.extensions[ERROR_KIND] = error.kind
        response.extensions[ERROR_MESSAGE] = error.message
        return [response]

    # -- hooks --------------------------------------------------------------------
    def on_invalid(self, event: CloudEvent, error: InputError) -> Model | None:
        """Map an undecodable request to a typed response; ``None`` means error response."""
        return None

    async def on_response(self, response: CloudEvent, request: CloudEvent) -> None:
        """A transport-level response to a request sent with :meth:`send_request`."""
        logger.debug("%s: unhandled response %s to %s", self.name, response.type, request.id)

    async def on_expired(self, request: CloudEvent) -> None:
        """An awaited response did not arrive before the request's expiry."""
        logger.warning("%s: request %s (%s) expired", self.name, request.id, request.type)

    # -- outgoing -----------------------------------------------------------------
    def build_event(
        self,
        message: Model,
        *,
        subject: str | None,
        content_type: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        expiry: int | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
    ) -> CloudEvent:
        """A CloudEvent carrying ``message`` from this processor."""
        ctype = content_type or self.content_type
        ext: dict[str, ExtensionValue] = (
            message.hidden_custommetadata()
            if self.hidden_fields_as == "custommetadata"
            else message.hidden_extensions()
        )
        return self._event(
            type(message), message.encode(ctype), ctype, ext, subject=subject,
            correlationid=correlationid, causationid=causationid, expiry=expiry,
            extensions=extensions,
        )  # fmt: skip

    def _event(
        self,
        model: type[Model],
        data: bytes,
        ctype: str,
        ext: dict[str, ExtensionValue],
        *,
        subject: str | None,
        correlationid: str | None,
        causationid: str | None,
        expiry: int | None,
        extensions: Mapping[str, ExtensionValue] | None,
    ) -> CloudEvent:
        event_type = model.__ce_type__
        if not event_type:
            raise TypeError(f"{model.__name__} has no __ce_type__")
        if extensions:
            ext.update(extensions)
        if correlationid is not None:
            ext[CORRELATION_ID] = correlationid
        if causationid is not None:
            ext[CAUSATION_ID] = causationid
        if expiry:
            ext[EXPIRY_INTERVAL] = int(expiry)
        event = CloudEvent(
            type=event_type,
            source=self.source,
            datacontenttype=ctype,
            dataschema=model.__ce_dataschema__,
            subject=subject,
            time=now_timestamp(),
            data=data,
            extensions=ext,
        )
        Tracing.inject(event)  # responses and events continue the trace being handled
        return event

    def response_event(self, request: CloudEvent, message: Model) -> CloudEvent:
        """The response to ``request``: same subject and correlation, caused by it."""
        ctype = request.datacontenttype if is_msgpack(request.datacontenttype) else JSON
        return self.build_event(
            message,
            subject=request.subject,
            content_type=ctype,
            correlationid=request.correlationid or request.id,
            causationid=request.id,
        )

    async def publish(
        self,
        message: Model,
        *,
        subject: str | None,
        intent: Intent | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        expiry: int | None = None,
    ) -> CloudEvent:
        """Send an application-triggered event through every bound transport.

        Raises :class:`UndeclaredEventError` for a type or intent it does not declare.
        """
        target = intent or self.default_intent
        self.check_outgoing(message, target)
        event = self.build_event(
            message,
            subject=subject,
            correlationid=correlationid,
            causationid=causationid,
            expiry=expiry,
        )
        await self.emit(event, target)
        return event

    async def publish_wire(
        self,
        model: type[Model],
        wire: Mapping[str, Any],
        *,
        subject: str | None,
        intent: Intent | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
    ) -> CloudEvent:
        """:meth:`publish` for a ``model`` the processor already holds in its wire form.

        ``wire`` is what ``model.to_raw()`` would give (wire names, JSON values), e.g. a
        record read back from storage where it was stored from a validated instance:
        building the instance only to encode it again cost the Store path about a tenth
        of its CPU. It is encoded as is, unchecked, so it must come from an instance of
        ``model``. Models with hidden fields carry extensions that only an instance
        knows; they raise :class:`TypeError` here. Raises
        :class:`UndeclaredEventError` as :meth:`publish` does.
        """
        target = intent or self.default_intent
        self._check_type(model, target)
        if model.hidden_fields():
            raise TypeError(f"{model.__name__} has hidden fields: publish an instance")
        ctype = self.content_type
        data: bytes = msgpack.packb(wire) if is_msgpack(ctype) else orjson.dumps(wire)
        event = self._event(
            model, data, ctype, {}, subject=subject, correlationid=correlationid,
            causationid=causationid, expiry=None, extensions=None,
        )  # fmt: skip
        await self.emit(event, target)
        return event

    async def send_request(
        self, message: Model, *, subject: str | None, expiry: int, intent: Intent | None = None
    ) -> CloudEvent:
        """Send a request that expects a response; :meth:`on_expired` runs if none comes.

        Raises :class:`UndeclaredEventError` for a type or intent it does not declare.
        """
        target = intent or self.default_intent
        self.check_outgoing(message, target)
        event = self.build_event(message, subject=subject, expiry=expiry)
        event.extensions.setdefault(CORRELATION_ID, event.id)
        await self.emit(event, target, expect_response=True)
        return event

    async def emit(
        self, event: CloudEvent, intent: Intent, *, expect_response: bool = False
    ) -> None:
        """Hand a ready CloudEvent to every bound transport."""
        for sink in self._sinks:
            await sink.emit(event, intent, expect_response=expect_response)


def _intents(
    what: str,
    given: Sequence[Intent] | None,
    declared: tuple[Intent, ...] | None,
    default: tuple[Intent, ...],
) -> tuple[Intent, ...]:
    """The intents in force: the constructor's, else the class's, else the direction's."""
    chosen = given if given is not None else declared
    if chosen is None:
        return default
    intents = tuple(dict.fromkeys(Intent(intent) for intent in chosen))
    if not intents:
        raise ValueError(f"{what} must name at least one intent")
    return intents


def error_event(
    request: CloudEvent | None, error: InputError | Exception, *, source: str
) -> CloudEvent:
    """An error response/event: the request's type when known, ``mdcserror*`` set."""
    kind = getattr(error, "kind", "internal_error")
    # Our own text, but it may quote input or a multi-line Redis reply: one wire-safe line.
    message = sanitize_text(getattr(error, "message", None) or str(error) or type(error).__name__)
    ext: dict[str, ExtensionValue] = {ERROR_KIND: kind, ERROR_MESSAGE: message}
    if request is not None and request.id:
        ext[CORRELATION_ID] = request.correlationid or request.id
        ext[CAUSATION_ID] = request.id
    return CloudEvent(
        type=request.type if request is not None and request.type else ERROR_EVENT_TYPE,
        source=source,
        subject=request.subject if request is not None else None,
        time=now_timestamp(),
        extensions=ext,
    )
