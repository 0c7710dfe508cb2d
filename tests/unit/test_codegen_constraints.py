"""The generator carries validation keywords into field metadata, and only those."""

from __future__ import annotations

import json
from typing import Any

from microdcs.codegen import render_module


def render(properties: dict[str, Any]) -> str:
    schema = {"$defs": {"Msg": {"type": "object", "properties": properties}}}
    return render_module(json.dumps(schema), "msg.schema.json")


def test_a_property_named_like_a_keyword_is_kept() -> None:
    code = render({"pattern": {"type": "string", "pattern": "^a"}, "minimum": {"type": "integer"}})
    assert 'pattern: str | None = field(default=None, metadata={"pattern": "^a"})' in code
    assert "minimum: int | None = None" in code


def test_nullable_property_keeps_its_keywords() -> None:
    code = render({"Level": {"type": ["integer", "null"], "maximum": 9}})
    assert '"alias": "Level", "maximum": 9' in code


def test_unchecked_formats_and_other_keywords_are_not_written() -> None:
    code = render(
        {"Link": {"type": "string", "format": "uri"}, "Even": {"type": "integer", "multipleOf": 2}}
    )
    assert '"format"' not in code and "multipleOf" not in code


def test_constrained_array_items_make_no_class_of_their_own() -> None:
    code = render({"Tags": {"type": "array", "items": {"type": "string", "maxLength": 4}}})
    assert "class Msg(Model)" in code and code.count("class ") == 1
    assert '"items": {"maxLength": 4}' in code
