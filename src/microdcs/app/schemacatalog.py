"""The JSON Schemas behind the models' ``__ce_dataschema__``, as AsyncAPI components.

A model names its payload schema by URL (``https://.../batches.schema.json#/$defs/Start``);
the schema files live in a project's ``schemas/`` directory with that URL as their
``$id``. The catalog finds them by ``$id`` (never over the network: a document must be
generated offline and the same every time), copies each file's ``$defs`` into
``components.schemas`` as ``{file}.{Def}`` and rewrites the ``$ref``s to point there. A
model whose schema is not found gets one derived from its fields, and is reported.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import orjson

import microdcs
from microdcs.models.base import Model

#: What AsyncAPI allows in a component name.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SIMPLE_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def default_directories(extra: Iterable[Path] = ()) -> list[Path]:
    """Where schema files are looked for: ``extra``, the current directory's ``schemas/``,
    and the ``schemas/`` of the checkout microdcs runs from (its own models' schemas)."""
    checkout = Path(microdcs.__file__).resolve().parents[2] / "schemas"
    found = [*extra, Path.cwd() / "schemas", checkout]
    return list(dict.fromkeys(p.resolve() for p in found if p.is_dir()))


class SchemaCatalog:
    """Payload schemas for AsyncAPI messages, resolved from local schema files."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self._files: dict[str, Path] = {}
        for directory in directories:
            for path in sorted(directory.glob("*.json")):
                schema_id = _schema_id(path)
                if schema_id is not None:
                    self._files.setdefault(schema_id, path)
        self._imported: dict[str, str] = {}  # $id -> component name prefix
        self._roots: dict[str, dict[str, Any]] = {}
        #: ``components.schemas`` of the document: every definition imported so far.
        self.components: dict[str, Any] = {}
        #: Data schema URLs no local file provides (their payloads are derived).
        self.unresolved: list[str] = []

    def payload(self, model: type[Model]) -> dict[str, Any]:
        """A schema of ``model``'s payload: a reference into :attr:`components`, or a
        schema derived from its fields when its data schema is not found."""
        url = model.__ce_dataschema__
        if url:
            resolved = self._resolve(url)
            if resolved is not None:
                return resolved
            if url not in self.unresolved:
                self.unresolved.append(url)
        return derived_schema(model, url)

    # -- resolution ---------------------------------------------------------------------
    def _resolve(self, url: str) -> dict[str, Any] | None:
        base, fragment = urldefrag(url)
        name = self._import(base)
        if name is None:
            return None
        parts = [p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/") if p]
        if not parts:
            return {"$ref": f"#/components/schemas/{name}"}
        root = self._roots[base]
        if len(parts) == 2 and parts[0] in ("$defs", "definitions"):
            if parts[1] not in (root.get(parts[0]) or {}):
                return None
            return {"$ref": f"#/components/schemas/{name}.{_safe(parts[1])}"}
        node: Any = root
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return self._rewrite(node, base) if isinstance(node, dict) else None

    def _import(self, schema_id: str) -> str | None:
        """Copy the file with ``$id`` ``schema_id`` into the components (once); its name."""
        if schema_id in self._imported:
            return self._imported[schema_id]
        path = self._files.get(schema_id)
        if path is None:
            return None
        root = orjson.loads(path.read_bytes())
        name = _safe(path.name.removesuffix(".json").removesuffix(".schema"))
        self._imported[schema_id] = name
        self._roots[schema_id] = root
        definitions = root.get("$defs") or root.get("definitions") or {}
        for key, definition in definitions.items():
            self.components[f"{name}.{_safe(key)}"] = self._rewrite(definition, schema_id)
        body = {k: v for k, v in root.items() if k not in ("$defs", "definitions")}
        self.components[name] = self._rewrite(body, schema_id)
        return name

    def _rewrite(self, node: Any, base: str) -> Any:
        """``node`` with its references pointing into the components; ``$schema`` and
        ``$id`` dropped (the document's schema format is AsyncAPI's own)."""
        if isinstance(node, list):
            return [self._rewrite(item, base) for item in node]
        if not isinstance(node, dict):
            return node
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$schema", "$id"):
                continue
            if key == "$ref" and isinstance(value, str):
                target = self._resolve(urljoin(base, value))
                if target is None:
                    # Never leave a reference a validator would fetch from the network.
                    result["description"] = f"see {value} (not found locally)"
                    continue
                result.update(target)
                continue
            result[key] = self._rewrite(value, base)
        return result


def derived_schema(model: type[Model], url: str | None) -> dict[str, Any]:
    """A payload schema from ``model``'s fields (wire names, simple types, required ones)
    for a model whose JSON Schema is not at hand."""
    hints = typing.get_type_hints(model)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(model):  # type: ignore[arg-type]
        if f.name.startswith("_"):
            continue  # hidden: an extension attribute, not payload
        wire = str(f.metadata.get("alias") or f.name)
        properties[wire] = _field_schema(hints.get(f.name))
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(wire)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    origin = f"its data schema {url} was not found" if url else "it names no data schema"
    schema["description"] = f"Derived from {model.__name__}'s fields: {origin}."
    return schema


def _field_schema(annotation: Any) -> dict[str, Any]:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _field_schema(args[0]) if len(args) == 1 else {}
    simple = _SIMPLE_TYPES.get(annotation)
    if simple is not None:
        return {"type": simple}
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return {"type": "array"}
    if origin is dict:
        return {"type": "object"}
    return {}


def _schema_id(path: Path) -> str | None:
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    schema_id = document.get("$id") if isinstance(document, dict) else None
    return urldefrag(schema_id)[0] if isinstance(schema_id, str) and schema_id else None


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name) or "_"
