"""What a processor handles and emits, as plain values (its capability metadata).

Read from the :func:`~microdcs.processing.processor.handles` registrations and the
processor's declared outgoing models (the class-level ``emitted`` and :func:`emits`);
:mod:`microdcs.processing.metadata` turns it into the retained ``{prefix}/metadata``
CloudEvent an MES or a tool reads to learn what a prefix offers without reading our code,
and ``microdcs asyncapi`` into an AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from microdcs.models.base import Model

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventTypeInfo:
    """One CloudEvent type with its data schema and, for a request, its response."""

    type: str
    dataschema: str | None = None
    response_type: str | None = None
    response_dataschema: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The types a processor takes and those it sends besides responses and errors."""

    handles: tuple[EventTypeInfo, ...] = ()
    emits: tuple[EventTypeInfo, ...] = ()
    #: Takes every CloudEvent type (``handles`` then lists none).
    handles_any_type: bool = False
    #: Sends types not known in advance (``emits`` lists the known ones).
    emits_any_type: bool = False


def handled_type(event_type: str, model: type[Model]) -> EventTypeInfo:
    """A handled type: the request's schema, and its response's type and schema if any."""
    response = model.__response_type__
    return EventTypeInfo(
        type=event_type,
        dataschema=model.__ce_dataschema__,
        response_type=(response.__ce_type__ or event_type) if response is not None else None,
        response_dataschema=response.__ce_dataschema__ if response is not None else None,
    )


def emitted_type(model: type[Model]) -> EventTypeInfo:
    """An emitted type, from the model whose events carry it."""
    if not model.__ce_type__:
        raise TypeError(f"{model.__name__} has no __ce_type__ and cannot be emitted")
    return EventTypeInfo(type=model.__ce_type__, dataschema=model.__ce_dataschema__)


def emits(*models: type[Model]) -> Callable[[T], T]:
    """Declare outgoing models, on a processor class or on one of its handlers.

    On a class it adds to its ``emitted``; on a handler it says that handler publishes
    them (the class's declaration is the union). Either way the types appear in the
    capability metadata and the AsyncAPI document, and ``publish`` accepts them.
    """
    if not models:
        raise TypeError("emits() needs at least one model")
    for model in models:
        if not model.__ce_type__:
            raise TypeError(f"{model.__name__} has no __ce_type__ and cannot be emitted")

    def declare(target: T) -> T:
        if isinstance(target, type):
            current: tuple[type[Model], ...] = getattr(target, "emitted", ())
            target.emitted = tuple(dict.fromkeys((*current, *models)))  # type: ignore[attr-defined]
            target.__dict__.get("_mdcs_emits_cache", {}).clear()
        else:
            already: tuple[type[Model], ...] = getattr(target, "_mdcs_emits", ())
            setattr(target, "_mdcs_emits", tuple(dict.fromkeys((*already, *models))))  # noqa: B010
        return target

    return declare


def declared_emits(cls: type[Any]) -> tuple[type[Model], ...]:
    """``cls.emitted`` and the :func:`emits` of the handlers ``cls`` resolves to, once each.

    A handler overridden without the decorator no longer declares what the overridden
    one did (as with ``handles``). Computed once per class.
    """
    cache: dict[str, tuple[type[Model], ...]] | None = cls.__dict__.get("_mdcs_emits_cache")
    if cache is None:
        cache = {}
        type.__setattr__(cls, "_mdcs_emits_cache", cache)
    found = cache.get("all")
    if found is None:
        members: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            members.update(vars(klass))
        declared: list[type[Model]] = list(getattr(cls, "emitted", ()))
        for member in members.values():
            declared += getattr(member, "_mdcs_emits", ())
        found = tuple(dict.fromkeys(declared))
        cache["all"] = found
    return found
