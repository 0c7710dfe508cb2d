"""Bounds on what a client may send, shared by the processing layer and every transport.

Declared here rather than in the app configuration because decoders, processors and
transports all apply them; the app composes this dataclass into its configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.core.settings import setting


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Bounds on what a client may send: input beyond them gets a clear error answer."""

    id_length: int = setting(
        "APP_LIMIT_ID_LENGTH",
        256,
        "Longest JobOrderID (characters) a request may carry; it becomes a Redis key and a "
        "retained topic level. Longer ones are answered with ReturnStatus 'invalid request'.",
    )
    attribute_length: int = setting(
        "APP_LIMIT_ATTRIBUTE_LENGTH",
        1024,
        "Longest CloudEvent attribute or extension value (characters) a received event may "
        "carry (id, source, type, subject, dataschema...); longer: 'invalid_event'.",
    )
    nesting_depth: int = setting(
        "APP_LIMIT_NESTING_DEPTH",
        64,
        "Deepest nesting of objects and arrays in a received payload; deeper: "
        "'invalid_payload'. At most 250 (orjson encodes at most 254 levels).",
    )
    log_value_chars: int = setting(
        "APP_LIMIT_LOG_VALUE_CHARS",
        200,
        "Longest attribute value (characters) written into a log line; the rest is cut.",
    )
