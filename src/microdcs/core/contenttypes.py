"""Media types microdcs understands, with cheap classification of content-type strings."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

JSON: Final = "application/json"
MSGPACK: Final = "application/msgpack"
CLOUDEVENTS_JSON: Final = "application/cloudevents+json"
STRUCTURED_PREFIX: Final = "application/cloudevents"


@lru_cache(maxsize=512)
def media_type(content_type: str | None) -> str | None:
    """The lower-case media type without parameters (``; charset=utf-8`` dropped)."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


# The classifiers run several times per message on a handful of distinct strings:
# remembered whole, each is one cache hit.
@lru_cache(maxsize=512)
def is_json(content_type: str | None) -> bool:
    """JSON data: ``application/json`` or any ``+json`` suffix."""
    mt = media_type(content_type)
    return mt is not None and (mt == JSON or mt.endswith("+json"))


@lru_cache(maxsize=512)
def is_msgpack(content_type: str | None) -> bool:
    mt = media_type(content_type)
    return mt in (MSGPACK, "application/x-msgpack", "application/vnd.msgpack")


@lru_cache(maxsize=512)
def is_structured(content_type: str | None) -> bool:
    """Structured-mode CloudEvents (the whole event is the payload)."""
    mt = media_type(content_type)
    return mt is not None and mt.startswith(STRUCTURED_PREFIX)
