"""Escaping of names that become part of a Redis key, so keys stay injective.

A scope's keys share the Redis Cluster hash tag ``{scope}``: Redis hashes only what lies
between the first ``{`` and the first ``}`` after it. A scope holding ``}`` would end its
tag early and could name another scope's keys (scope ``a}:job:x`` + job ``y`` gave the
key of scope ``a``'s job ``x}:job:y``). So the text inside a tag is percent-encoded:
``{``, ``}``, ``%`` (the escape character itself) and control characters become ``%XX``
per UTF-8 byte; everything else, including ``:``, stays as it is. Ordinary names keep the
keys they had before, and existing data stays readable.

``:`` needs no escaping: with the tag brace-free, the scope ends at the first ``}``, and
what follows is a fixed word (``job:``, ``list``, ``exec:``...) and, last, one id that runs
to the end of the key. So (scope, kind, id) can be read back from every key.
"""

from __future__ import annotations

import re

#: What may not appear literally inside a hash tag: the tag's braces, the escape
#: character, C0/C1 controls and DEL, and lone surrogates (not encodable as UTF-8).
_UNSAFE = re.compile("[%{}\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ESCAPED = re.compile("%([0-9A-F]{2})")


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8", "surrogatepass"))


def escape_key_part(name: str) -> str:
    """``name`` made safe inside a hash tag; the identity for ordinary names."""
    if _UNSAFE.search(name) is None:  # the common case: no copy, no allocation
        return name
    return _UNSAFE.sub(_percent, name)


def unescape_key_part(text: str) -> str:
    """The inverse of :func:`escape_key_part` (for tools reading keys back)."""
    if "%" not in text:
        return text
    raw = bytearray()
    position = 0
    for match in _ESCAPED.finditer(text):
        raw += text[position : match.start()].encode("utf-8", "surrogatepass")
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += text[position:].encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "surrogatepass")


def hash_tag(name: str) -> str:
    """The Redis Cluster hash tag ``{name}``: every key carrying it lands in one slot."""
    return "{" + escape_key_part(name) + "}"
