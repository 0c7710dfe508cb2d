"""The CloudEvents 1.0 envelope used everywhere inside microdcs.

The event carries its data as raw bytes plus ``datacontenttype``; decoding into a typed
model happens once, in the processor dispatch, so transports never touch payload
semantics. Extension attribute values are kept typed (str, int, bool) and turned into
their canonical string only at the wire.

Every received event is validated once, at decode, against explicit limits: attribute
values travel on into topics, keys, logs and our own answers, so a value too long or
holding a control character is refused there with ``invalid_event``.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from functools import lru_cache
from random import getrandbits as _random_bits
from typing import Final

from microdcs.core.errors import InvalidCloudEventError

# Characters no received attribute value or ID may hold: the MQTT rule (wiretext), which
# our outgoing strings follow too. They would travel on into topics, keys and log lines.
from microdcs.core.wiretext import FORBIDDEN as FORBIDDEN_CHARACTERS

SPEC_VERSION: Final = "1.0"

ExtensionValue = str | int | bool

#: Context attributes defined by the CloudEvents 1.0 core specification.
CORE_ATTRIBUTES: Final = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
REQUIRED_ATTRIBUTES: Final = ("id", "source", "specversion", "type")
#: Names the event formats use for the data itself; no attribute may take them.
RESERVED_NAMES: Final = frozenset({"data", "data_base64"})

#: Extensions whose value is an integer on the wire (all others are strings).
INTEGER_EXTENSIONS: Final = frozenset({"expiryinterval"})

CORRELATION_ID: Final = "correlationid"
CAUSATION_ID: Final = "causationid"
EXPIRY_INTERVAL: Final = "expiryinterval"
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
METHOD: Final = "method"
ERROR_KIND: Final = "mdcserrorkind"
ERROR_MESSAGE: Final = "mdcserrormessage"


_UUID_VARIANT: Final = "89ab89ab89ab89ab"

#: Default longest attribute value (characters) a received event may carry
#: (``APP_LIMIT_ATTRIBUTE_LENGTH``).
MAX_ATTRIBUTE_LENGTH: Final = 1024


def text_problem(value: str, max_length: int) -> str | None:
    """Why ``value`` is not acceptable as a received attribute or ID, or ``None``.

    The reason never quotes ``value``: it is answered and logged.
    """
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    bad = FORBIDDEN_CHARACTERS.search(value)
    if bad is not None:
        return f"holds character U+{ord(bad.group()):04X} at position {bad.start()}"
    return None


def new_event_id() -> str:
    """A fresh, globally unique event id: a random (version 4) UUID in its text form.

    Formatted by hand from 128 bits of the ``random`` module's generator, which is seeded
    from the OS entropy source and re-seeded in a forked child: ids must be unique, not
    secret, and this runs for every event sent, where ``uuid.uuid4()`` costs a
    ``getrandom`` system call and a ``UUID`` object each time.
    """
    h = f"{_random_bits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


@lru_cache(maxsize=4)
def _utc_second(epoch_second: int) -> str:
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(epoch_second))


def now_timestamp() -> str:
    """The current time as an RFC 3339 timestamp in UTC, to the microsecond.

    The date and time of day are formatted once per second (cached), only the fraction
    per event: this runs for every event sent.
    """
    second, micros = divmod(_time.time_ns() // 1000, 1_000_000)
    return f"{_utc_second(second)}.{micros:06d}Z"


def now_millis() -> tuple[str, int]:
    """The current time to the millisecond: RFC 3339 UTC text and milliseconds since the
    epoch (what stored records keep), formatted as cheaply as :func:`now_timestamp`."""
    ms = _time.time_ns() // 1_000_000
    second, millis = divmod(ms, 1000)
    return f"{_utc_second(second)}.{millis:03d}Z", ms


def is_attribute_name(name: str) -> bool:
    """CloudEvents attribute names are lower-case ASCII letters and digits."""
    return bool(name) and name.isascii() and name.isalnum() and name.lower() == name


def canonical_string(value: ExtensionValue) -> str:
    """The canonical string form of an attribute value (CloudEvents type system)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_extension(name: str, text: str) -> ExtensionValue:
    """Turn a wire string back into the typed value of a known extension."""
    if name in INTEGER_EXTENSIONS:
        try:
            return int(text)
        except ValueError:
            raise InvalidCloudEventError(f"extension {name!r} must be an integer") from None
    return text


@dataclass(slots=True)
class CloudEvent:
    """One CloudEvent: context attributes, extensions and raw data bytes."""

    type: str
    source: str
    id: str = field(default_factory=new_event_id)
    specversion: str = SPEC_VERSION
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: str | None = None
    data: bytes | None = None
    extensions: dict[str, ExtensionValue] = field(default_factory=dict)

    def validate(self, *, max_length: int = MAX_ATTRIBUTE_LENGTH) -> None:
        """Raise :class:`InvalidCloudEventError` unless the attributes are sane.

        Required attributes must be set; every string attribute and extension value (and
        extension name) is at most ``max_length`` characters without control characters.
        """
        for name in REQUIRED_ATTRIBUTES:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidCloudEventError(f"attribute {name!r} is missing or empty")
        if self.specversion != SPEC_VERSION:
            raise InvalidCloudEventError("unsupported specversion (must be '1.0')")
        for name in self.extensions:
            if len(name) > max_length:
                raise InvalidCloudEventError(f"an extension name is longer than {max_length}")
            if not is_attribute_name(name) or name in CORE_ATTRIBUTES or name in RESERVED_NAMES:
                raise InvalidCloudEventError(f"invalid extension attribute name {name!r}")
        self._check_values(max_length)

    def _check_values(self, max_length: int) -> None:
        """Length and character limits of every string value (hot path: one regex call)."""
        joined = "".join(
            (
                self.id,
                self.source,
                self.type,
                self.subject or "",
                self.dataschema or "",
                self.datacontenttype or "",
                self.time or "",
                *[v for v in self.extensions.values() if type(v) is str],
            )
        )
        # isprintable() (C speed) is False for every forbidden character; the regex only
        # decides when it is False for an allowed one (e.g. U+00A0).
        if len(joined) <= max_length and (
            joined.isprintable() or FORBIDDEN_CHARACTERS.search(joined) is None
        ):
            return
        for name, value in self.attributes().items():
            if isinstance(value, str) and (problem := text_problem(value, max_length)):
                raise InvalidCloudEventError(f"attribute {name!r} {problem}")

    def attributes(self) -> dict[str, ExtensionValue]:
        """All set context attributes and extensions (no data), typed."""
        attrs: dict[str, ExtensionValue] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        if self.datacontenttype is not None:
            attrs["datacontenttype"] = self.datacontenttype
        if self.dataschema is not None:
            attrs["dataschema"] = self.dataschema
        if self.subject is not None:
            attrs["subject"] = self.subject
        if self.time is not None:
            attrs["time"] = self.time
        attrs.update(self.extensions)
        return attrs

    # Typed accessors for the extensions microdcs relies on.
    @property
    def correlationid(self) -> str | None:
        value = self.extensions.get(CORRELATION_ID)
        return None if value is None else str(value)

    @property
    def causationid(self) -> str | None:
        value = self.extensions.get(CAUSATION_ID)
        return None if value is None else str(value)

    @property
    def expiryinterval(self) -> int | None:
        value = self.extensions.get(EXPIRY_INTERVAL)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def method(self) -> str:
        """Station configuration method: ``PUT`` unless the event says ``DELETE``."""
        value = self.extensions.get(METHOD)
        return str(value).upper() if value is not None else "PUT"

    @property
    def error_kind(self) -> str | None:
        value = self.extensions.get(ERROR_KIND)
        return None if value is None else str(value)
