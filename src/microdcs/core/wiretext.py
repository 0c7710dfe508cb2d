"""Which strings can travel in MQTT (and so in any CloudEvent attribute of ours).

MQTT UTF-8 strings must not hold U+0000 or lone surrogates and should not hold control
characters or non-characters (MQTT-1.5.4); Mosquitto closes the connection of a client
that sends them. Attributes we accept and attributes we send are held to this one rule.
"""

from __future__ import annotations

import re

#: MQTT UTF-8 strings and binary data carry a two-byte length.
MAX_STRING_BYTES = 65535
#: U+0000, C0 and C1 controls, DEL, lone surrogates and the non-characters U+FFFE/U+FFFF.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def wire_text_problem(value: str) -> str | None:
    """Why ``value`` cannot be an MQTT UTF-8 string, or ``None`` when it can."""
    bad = FORBIDDEN.search(value)
    if bad is not None:
        return f"character U+{ord(bad.group()):04X} at position {bad.start()}"
    if len(value) * 3 > MAX_STRING_BYTES and len(value.encode()) > MAX_STRING_BYTES:
        return f"longer than {MAX_STRING_BYTES} bytes"
    return None


def all_wire_text(values: list[str]) -> bool:
    """True when every one of ``values`` can be an MQTT UTF-8 string (one regex pass over
    them joined, for the many short attributes of every event sent); False means at least
    one may not: ask :func:`wire_text_problem` of each for which and why."""
    joined = " ".join(values)  # a space is allowed, so it hides no forbidden character
    return FORBIDDEN.search(joined) is None and len(joined) * 3 <= MAX_STRING_BYTES


def sanitize_text(value: str, limit: int = 1024) -> str:
    """Our own free text (error messages) made safe for the wire: controls become spaces."""
    cleaned = FORBIDDEN.sub(" ", value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
