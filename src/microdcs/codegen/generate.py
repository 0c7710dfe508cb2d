"""Generate mashumaro dataclasses on :class:`microdcs.models.Model` from a JSON Schema.

datamodel-code-generator parses the schema (references, names, enum members, required
fields); the Python is rendered by our own template so the output carries what the runtime
needs (wire aliases, CloudEvent type and dataschema, request/response links) and is
formatted by construction: the same schema always gives the same bytes, with no timestamp
and no dependency on a formatter's version.

Extension keywords read from a schema object that becomes a class:

- ``x-cloudevent-type``: the CloudEvent ``type`` (``__ce_type__``).
- ``x-cloudevent-dataschema``: the CloudEvent ``dataschema`` (``__ce_dataschema__``).
- ``x-response-type``: name of the ``$defs`` entry a request is answered with
  (``__response_type__``).
- ``x-response-copy``: wire names of fields copied from a request into its response
  (``__response_copy__``).
- ``additionalProperties: false`` makes unknown payload keys a validation error.

Validation keywords of a property (``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``, ``minItems``, ``maxItems``,
``const``, ``format`` ``date-time`` and ``uuid``; for an array also those of its ``items``)
are written into the field's metadata, from which the model compiler builds the checks into
the decoder once per class: no schema is read per message. They are removed from the schema
handed to datamodel-code-generator, which would otherwise make a class of every constrained
array item.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from datamodel_code_generator.model.base import DataModel
from datamodel_code_generator.model.dataclass import DataClass
from datamodel_code_generator.model.enum import Enum as EnumModel
from datamodel_code_generator.parser.jsonschema import JsonSchemaParser
from datamodel_code_generator.types import DataType

LINE_LENGTH = 100
_TEMPLATES = Path(__file__).parent / "templates"
_ANY = re.compile(r"\bAny\b")
_SCALARS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "Any": "Any"}
#: String formats travel as the string the sender wrote, so the payload round-trips unchanged.
_STRING_FORMATS = {"AwareDatetime", "NaiveDatetime", "datetime", "date", "time", "AnyUrl", "UUID"}
#: Validation keywords carried into field metadata (in this order, so output is stable).
CONSTRAINT_KEYWORDS = (
    "const",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
)
#: Formats the decoder checks; others stay documentation.
CHECKED_FORMATS = ("date-time", "uuid")
#: Keys of a schema object whose value is a schema, or a list or a map of schemas.
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


class GeneratorError(ValueError):
    """The schema uses a construct the generator does not support; the message says which."""


@dataclass
class _Field:
    comment: list[str]
    lines: list[str]
    attribute: str
    wire: str


@dataclass
class _Class:
    name: str
    doc: list[str]
    classvars: list[str] = field(default_factory=list)
    fields: list[_Field] = field(default_factory=list)
    forbid_extra: bool = False
    kind: str = "dataclass"


@dataclass
class _Member:
    name: str
    value: str


@dataclass
class _Enum:
    name: str
    base: str
    doc: list[str]
    members: list[_Member]
    kind: str = "enum"


def generate_models(schema_path: str, outdir: str) -> None:
    """Write ``{outdir}/{module}.py`` for ``{module}.schema.json`` (or ``{module}.json``)."""
    path = Path(schema_path)
    target = Path(outdir) / f"{module_name(path)}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    code = render_module(path.read_text(encoding="utf-8"), path.name)
    target.write_text(code, encoding="utf-8", newline="\n")


def module_name(schema_path: Path) -> str:
    """``machinery_jobs.schema.json`` -> ``machinery_jobs``; must be a Python identifier."""
    name = schema_path.name.removesuffix(".json").removesuffix(".schema")
    if not name.isidentifier():
        raise GeneratorError(f"{schema_path.name}: {name!r} is not a valid module name")
    return name


def render_module(schema_text: str, schema_file: str) -> str:
    """The Python source of the models of one schema (deterministic)."""
    schema = json.loads(schema_text)
    models = _parse(json.dumps(_without_constraints(schema)))
    by_name = {m.class_name: m for m in models}
    items: list[_Class | _Enum] = []
    links: list[str] = []
    for model in _ordered(models):
        keywords = _keywords(schema, model)
        if isinstance(model, EnumModel):
            items.append(_enum_view(model, keywords))
        elif isinstance(model, DataClass):
            items.append(_class_view(model, keywords, by_name))
            response = keywords.get("x-response-type")
            if response is not None:
                links += _assignment(f"{model.class_name}.__response_type__", response, 0)
        elif model.fields and model.reference.path.rstrip("#") == "":
            continue  # the root of a schema that only holds $defs
        else:
            raise GeneratorError(f"{model.class_name}: unsupported schema construct")
    env = _environment()
    blocks = [
        env.get_template(f"{item.kind}.py.jinja2").render(item=item).strip("\n") for item in items
    ]
    text = env.get_template("module.py.jinja2").render(
        schema_file=schema_file,
        description=_docstring_body(schema.get("description")),
        dataclass_imports=_dataclass_imports(items),
        enum_imports=sorted({i.base for i in items if isinstance(i, _Enum)}),
        typing_imports=_typing_imports(items),
        blocks=blocks,
        links=links,
    )
    return text.rstrip("\n") + "\n"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


# -- parsing ---------------------------------------------------------------------------
def _parse(schema_text: str) -> list[DataModel]:
    parser = JsonSchemaParser(
        schema_text,
        data_model_type=DataClass,
        snake_case_field=True,
        capitalise_enum_members=True,
        use_schema_description=True,
        use_field_description=True,
        field_constraints=True,
    )
    parser.parse_raw()
    return list(parser.results)


def _without_constraints(node: Any) -> Any:
    """A copy of a schema without the validation keywords we generate ourselves."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in CONSTRAINT_KEYWORDS:
            continue
        if key in _SUBSCHEMA:
            out[key] = _without_constraints(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_without_constraints(v) for v in value]
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _without_constraints(v) for k, v in value.items()}
        else:
            out[key] = value
    return out


def _constraints(node: Any) -> dict[str, Any]:
    """The checked keywords of one property schema (also of its ``items``), in fixed order."""
    if not isinstance(node, dict):
        return {}
    found = {k: node[k] for k in CONSTRAINT_KEYWORDS if k in node}
    if node.get("format") in CHECKED_FORMATS:
        found["format"] = node["format"]
    items = _constraints(node.get("items"))
    if items:
        found["items"] = items
    return found


def _ordered(models: list[DataModel]) -> Iterator[DataModel]:
    """Schema order, but every class after the classes it refers to (mashumaro needs that)."""
    by_name = {m.class_name: m for m in models}
    done: set[str] = set()

    def visit(model: DataModel) -> Iterator[DataModel]:
        if model.class_name in done:
            return
        done.add(model.class_name)
        for f in model.fields:
            for name in sorted(_references(f.data_type)):
                if name in by_name:
                    yield from visit(by_name[name])
        yield model

    for model in models:
        yield from visit(model)


def _references(data_type: DataType) -> set[str]:
    names: set[str] = set()
    if data_type.reference is not None:
        names.add(data_type.reference.short_name)
    for inner in data_type.data_types:
        names |= _references(inner)
    return names


def _keywords(schema: dict[str, Any], model: DataModel) -> dict[str, Any]:
    """The raw schema object a model came from (for our ``x-`` keywords)."""
    pointer = model.reference.path.split("#", 1)[-1]
    node: Any = schema
    for part in filter(None, pointer.split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node if isinstance(node, dict) else {}


# -- views -----------------------------------------------------------------------------
def _enum_view(model: DataModel, keywords: dict[str, Any]) -> _Enum:
    values = [ast.literal_eval(str(f.default)) for f in model.fields]
    if all(isinstance(v, str) for v in values):
        base = "StrEnum"
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        base = "IntEnum"
    else:
        raise GeneratorError(f"{model.class_name}: enum values must be all strings or all ints")
    members = [
        _Member(str(f.name), json.dumps(v)) for f, v in zip(model.fields, values, strict=True)
    ]
    doc = _docstring(keywords.get("description") or f"The {model.class_name} enumeration.")
    return _Enum(model.class_name, base, doc, members)


def _class_view(
    model: DataModel, keywords: dict[str, Any], by_name: dict[str, DataModel]
) -> _Class:
    name = model.class_name
    view = _Class(name, _docstring(keywords.get("description") or f"The {name} message."))
    view.forbid_extra = keywords.get("additionalProperties") is False
    order = list(keywords.get("properties", {}))
    for f in sorted(model.fields, key=lambda f: _position(order, str(f.original_name or f.name))):
        attribute = str(f.name)
        if attribute.startswith("_"):
            raise GeneratorError(f"{name}.{f.original_name}: names starting with _ are reserved")
        wire = str(f.original_name or f.name)
        hint = _type_hint(f.data_type, name)
        comment = _comment(f.extras.get("description") if f.extras else None)
        checks = _constraints(keywords.get("properties", {}).get(wire))
        lines = _field_lines(attribute, wire, hint, f.required, checks)
        view.fields.append(_Field(comment, lines, attribute, wire))
    for key, var in (
        ("x-cloudevent-type", "__ce_type__"),
        ("x-cloudevent-dataschema", "__ce_dataschema__"),
    ):
        if key in keywords:
            target = f"{var}: ClassVar[str | None]"
            view.classvars += _assignment(target, json.dumps(keywords[key]), 4)
    response = keywords.get("x-response-type")
    if response is not None and not isinstance(by_name.get(response), DataClass):
        raise GeneratorError(f"{name}: x-response-type {response!r} is not a message in $defs")
    copy = keywords.get("x-response-copy", [])
    if copy:
        if response is None:
            raise GeneratorError(f"{name}: x-response-copy needs x-response-type")
        view.classvars += _response_copy(view, by_name[response], copy)
    return view


def _position(order: list[str], wire: str) -> int:
    """Fields keep the order of the schema's ``properties`` (the payload key order)."""
    return order.index(wire) if wire in order else len(order)


def _response_copy(view: _Class, response: DataModel, wire_names: list[str]) -> list[str]:
    attributes = {f.wire: f.attribute for f in view.fields}
    targets = {str(f.original_name or f.name): str(f.name) for f in response.fields}
    names: list[str] = []
    for wire in wire_names:
        if wire not in attributes or targets.get(wire) != attributes[wire]:
            raise GeneratorError(f"{view.name}: x-response-copy {wire!r} is not a field of both")
        names.append(json.dumps(attributes[wire]))
    target = "__response_copy__: ClassVar[tuple[str, ...]]"
    return _assignment(target, f"({', '.join(names)},)", 4)


def _type_hint(data_type: DataType, owner: str) -> str:
    if data_type.reference is not None:
        return str(data_type.reference.short_name)
    if data_type.is_list:
        return f"list[{_type_hint(data_type.data_types[0], owner)}]"
    if data_type.is_dict:
        inner = data_type.data_types[0] if data_type.data_types else None
        return f"dict[str, {_type_hint(inner, owner) if inner is not None else 'Any'}]"
    if data_type.data_types:
        hints = dict.fromkeys(_type_hint(d, owner) for d in data_type.data_types)
        return " | ".join(hints)
    if data_type.type in _SCALARS:
        return _SCALARS[data_type.type]
    if data_type.type in _STRING_FORMATS:
        return "str"
    if data_type.type is None:
        return "Any"
    raise GeneratorError(f"{owner}: unsupported type {data_type.type!r}")


# -- formatting (the output is ruff-format clean by construction) ------------------------
def _field_lines(
    attribute: str, wire: str, hint: str, required: bool, checks: dict[str, Any] | None = None
) -> list[str]:
    """The field declaration, split over lines the way ``ruff format`` splits it."""
    args = [] if required else ["default=None"]
    metadata: dict[str, Any] = {}
    if wire != attribute:
        metadata["alias"] = wire
    metadata.update(checks or {})
    if metadata:
        args.append(f"metadata={_literal(metadata)}")
    annotation = hint if required else f"{hint} | None"
    if not args:
        return [f"{attribute}: {annotation}"]
    if args == ["default=None"]:
        return [f"{attribute}: {annotation} = None"]
    line = f"{attribute}: {annotation} = field({', '.join(args)})"
    if len(line) + 4 <= LINE_LENGTH:
        return [line]
    joined = f"    {', '.join(args)}"
    if len(joined) + 4 <= LINE_LENGTH:
        return [f"{attribute}: {annotation} = field(", joined, ")"]
    body: list[str] = [] if required else ["    default=None,"]
    if metadata:
        body += _exploded("    metadata=", metadata, 4)
    return [f"{attribute}: {annotation} = field(", *body, ")"]


def _exploded(prefix: str, value: dict[str, Any], indent: int) -> list[str]:
    """``prefix{...},`` on one line if it fits, else one key per line (ruff's magic comma)."""
    line = f"{prefix}{_literal(value)},"
    if len(line) + indent <= LINE_LENGTH:
        return [line]
    inner = " " * (len(prefix) - len(prefix.lstrip()) + 4)
    lines = [f"{prefix}{{"]
    for key, item in value.items():
        if isinstance(item, dict):
            lines += _exploded(f"{inner}{json.dumps(key)}: ", item, indent)
        else:
            lines.append(f"{inner}{json.dumps(key)}: {_literal(item)},")
    return [*lines, f"{prefix[: len(prefix) - len(prefix.lstrip())]}}},"]


def _literal(value: Any) -> str:
    """A Python literal as ruff formats it (double quotes, ``True``, ``None``)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise GeneratorError(f"cannot write {value!r} as a constraint")


def _docstring_body(text: str | None) -> str:
    if not text:
        return ""
    return "\n".join(textwrap.wrap(" ".join(text.split()), LINE_LENGTH))


def _docstring(text: str) -> list[str]:
    """A docstring as ruff keeps it: one line when the text wraps to one, else wrapped."""
    lines = textwrap.wrap(" ".join(text.replace('"""', "'''").split()), LINE_LENGTH - 10)
    if len(lines) == 1:
        return [f'"""{lines[0]}"""']
    return [f'"""{lines[0]}', *lines[1:], '"""']


def _assignment(target: str, value: str, indent: int) -> list[str]:
    """``target = value``, parenthesised over two more lines when too long (as ruff does)."""
    line = f"{target} = {value}"
    if len(line) + indent <= LINE_LENGTH:
        return [line]
    return [f"{target} = (", f"    {value}", ")"]


def _comment(text: str | None) -> list[str]:
    if not text:
        return []
    return [f"#: {line}" for line in textwrap.wrap(" ".join(text.split()), LINE_LENGTH - 7)]


def _dataclass_imports(items: list[_Class | _Enum]) -> list[str]:
    classes = [i for i in items if isinstance(i, _Class)]
    names = ["dataclass"] if classes else []
    if any("field(" in line for c in classes for f in c.fields for line in f.lines):
        names.append("field")
    return names


def _typing_imports(items: list[_Class | _Enum]) -> list[str]:
    names: set[str] = set()
    for item in items:
        if isinstance(item, _Class):
            if item.classvars:
                names.add("ClassVar")
            for f in item.fields:
                if _ANY.search(f.lines[0]):
                    names.add("Any")
    return sorted(names)
