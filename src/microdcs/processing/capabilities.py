"""What a processor handles and emits, as plain values (its capability metadata).

Read from the :func:`~microdcs.processing.processor.handles` registrations and the
processor's class-level ``emitted`` declaration; :mod:`microdcs.processing.metadata` turns
it into the retained ``{prefix}/metadata`` CloudEvent an MES or a tool reads to learn what
a prefix offers without reading our code.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.models.base import Model


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
