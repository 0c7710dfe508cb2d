"""The fast, validating codec of models: a decoder and an encoder compiled per class.

mashumaro checks neither ``str``/``int`` fields nor schema constraints, and checking them
after it would cost more than its own decode. So each model class gets a decoder and an
encoder compiled once, at first use, from its dataclass fields; they stay only while they
are at least as fast as plain mashumaro on the generated models (``bench/bench_models.py``:
the woodworking order decodes and encodes in 0.92x of mashumaro's time, checks included)
and give its results (``tests/unit/test_models_codec_paths.py``). The decoder
validates (type, required, enum value, and the JSON Schema keywords the generator put in
the field metadata: see :data:`CONSTRAINTS`) while it builds the instance; the encoder writes
the wire dict directly. Models using mashumaro features the compiler does not know
(other types, hooks, serialization strategies) keep the plain mashumaro path.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from mashumaro.config import BaseConfig

from microdcs.models.constraints import (
    APPLIES_TO,
    CONSTRAINTS,
    FORMATS,
    Invalid,
    bound_value,
    reason_of,
    same,
)

if TYPE_CHECKING:
    from microdcs.models.base import Model

_MISSING: Any = object()


def _to_raw(model: Model) -> dict[str, Any]:
    return model.to_raw()


_METADATA = {"alias", "serialize", "items", *CONSTRAINTS}
__all__ = ["Invalid", "ModelCompiler", "Unsupported"]


class Unsupported(Exception):
    """The class uses something the compiler does not handle; use mashumaro."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What a field's annotation means on the wire."""

    kind: str  # "any", "scalar", "enum", "model", "list", "dict"
    nullable: bool = False
    target: Any = None  # scalar type name, enum class or model class
    item: _Spec | None = None
    #: ``(keyword, value)`` pairs of :data:`CONSTRAINTS`, checked after the type.
    checks: tuple[tuple[str, Any], ...] = ()


_SCALARS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool"}
_SCALAR_CHECK = {
    "str": ("type({v}) is not str", "must be a string"),
    "int": ("type({v}) is not int", "must be an integer"),
    "float": ("type({v}) is not float and type({v}) is not int", "must be a number"),
    "bool": ("type({v}) is not bool", "must be a boolean"),
}


def _with_checks(spec: _Spec, metadata: Any, where: str) -> _Spec:
    """``spec`` with the constraints of a field's metadata (and of its list items)."""
    checks = tuple(
        (k, metadata[k])
        for k in CONSTRAINTS
        if k in metadata and (k != "format" or metadata[k] in FORMATS)
    )
    items = metadata.get("items")
    item = spec.item
    if items:
        if spec.kind != "list" or item is None:
            raise Unsupported(f"{where}: item constraints on a {spec.kind}")
        item = _with_checks(item, items, where)
    return dataclasses.replace(spec, checks=checks, item=item)


_MASHUMARO_HOOKS = (
    "__pre_deserialize__",
    "__post_deserialize__",
    "__pre_serialize__",
    "__post_serialize__",
)


def _overrides_hooks(cls: type[Model], base: type[Model]) -> bool:
    """True when a class between ``cls`` and ``base`` defines a mashumaro hook."""
    for klass in cls.__mro__:
        if klass is base:
            return False
        if any(hook in klass.__dict__ for hook in _MASHUMARO_HOOKS):
            return True
    return False


def _spec(tp: Any, base: type[Model]) -> _Spec:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise Unsupported(f"union {tp!r}")
        return dataclasses.replace(_spec(args[0], base), nullable=True)
    if tp is Any:
        return _Spec("any", nullable=True)
    if tp in _SCALARS:
        return _Spec("scalar", target=_SCALARS[tp])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _Spec("enum", target=tp)
    if isinstance(tp, type) and issubclass(tp, base):
        return _Spec("model", target=tp)
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        return _Spec("list", item=_spec(item, base))
    if origin is dict:
        key, item = get_args(tp) or (str, Any)
        if key is not str:
            raise Unsupported(f"dict key {key!r}")
        return _Spec("dict", item=_spec(item, base))
    if tp in (list, dict):
        return _Spec(tp.__name__, item=_Spec("any", nullable=True))
    raise Unsupported(f"type {tp!r}")


class ModelCompiler:
    """Writes the source of the decoders/encoders of a model and the models it contains."""

    def __init__(self, base: type[Model]) -> None:
        #: The model base class: where mashumaro settings and hooks count as defaults.
        self.base = base
        self.ns: dict[str, Any] = {
            "Invalid": Invalid,
            "_M": _MISSING,
            "_new": object.__new__,
            "_raw": _to_raw,
            "_same": same,
        }
        self.lines: list[str] = []
        self.names: dict[type[Model], str] = {}
        self.pending: list[type[Model]] = []
        self.counter = 0

    def name(self, cls: type[Model]) -> str:
        if cls not in self.names:
            self.names[cls] = f"{cls.__name__}_{len(self.names)}"
            self.ns[f"C_{self.names[cls]}"] = cls
            self.pending.append(cls)
        return self.names[cls]

    def constant(self, value: Any) -> str:
        self.counter += 1
        self.ns[f"K{self.counter}"] = value
        return f"K{self.counter}"

    def compile(self, root: type[Model]) -> dict[type[Model], tuple[Any, Any]]:
        self.name(root)
        while self.pending:
            self._class(self.pending.pop())
        exec(compile("\n".join(self.lines), f"<microdcs codec {root.__name__}>", "exec"), self.ns)
        return {c: (self.ns[f"dec_{n}"], self.ns[f"enc_{n}"]) for c, n in self.names.items()}

    # -- one class ----------------------------------------------------------------------
    def _class(self, cls: type[Model]) -> None:
        if "__slots__" in cls.__dict__ or _overrides_hooks(cls, self.base):
            raise Unsupported(f"{cls.__name__} uses slots or mashumaro hooks")
        config = getattr(cls, "Config", self.base.Config)
        for option in dir(BaseConfig):
            if option.startswith("_") or option == "forbid_extra_keys":
                continue
            if getattr(config, option, None) != getattr(self.base.Config, option, None):
                raise Unsupported(f"{cls.__name__}.Config.{option}")
        hints = get_type_hints(cls)
        n = self.names[cls]
        dec = [
            f"def dec_{n}(d):",
            "    if type(d) is not dict:",
            '        raise Invalid("must be an object")',
        ]
        enc = [f"def enc_{n}(o):", "    r = {}"]
        values: list[str] = []
        wires: list[str] = []
        for i, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
            if not set(f.metadata) <= _METADATA:
                raise Unsupported(f"{cls.__name__}.{f.name} metadata")
            default = self._default(f)
            if f.name.startswith("_") or f.metadata.get("serialize") == "omit":
                if default is None:
                    raise Unsupported(f"{cls.__name__}.{f.name} hidden without default")
                values.append(f"{f.name!r}: {default}")
                continue
            spec = _with_checks(
                _spec(hints[f.name], self.base), f.metadata, f"{cls.__name__}.{f.name}"
            )
            wire = str(f.metadata.get("alias") or f.name)
            wires.append(wire)
            var = f"a{i}"
            dec += self._field(spec, var, wire, f.name, default)
            values.append(f"{f.name!r}: {var}")
            expr = self._encode(spec, "v", 0)
            enc += [f"    v = o.{f.name}", "    if v is not None:"]
            enc += [f"        r[{wire!r}] = {expr}"]
        if getattr(config, "forbid_extra_keys", False):
            known = self.constant(frozenset(wires) | {f.name for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
            dec += [
                f"    if not {known}.issuperset(d):",
                f"        x = min(str(k) for k in d if k not in {known})",
                '        raise Invalid("is not allowed", [x])',
            ]
        dec += [f"    o = _new(C_{n})", f"    o.__dict__ = {{{', '.join(values)}}}"]
        if hasattr(cls, "__post_init__"):
            dec += ["    o.__post_init__()"]
        dec += ["    return o"]
        self.lines += [*dec, *enc, "    return r", ""]

    def _field(self, spec: _Spec, var: str, wire: str, name: str, default: str | None) -> list[str]:
        """Read one field into ``var``; a present, valid scalar takes a single type test."""
        missing = (
            f'raise Invalid("is required", [{wire!r}])' if default is None else f"{var} = {default}"
        )
        null = "pass" if spec.nullable else f'raise Invalid("must not be null", [{wire!r}])'
        alias = [f"if {var} is _M:", f"    {var} = d.get({name!r}, _M)"] if wire != name else []
        if spec.kind == "scalar":
            test, reason = _SCALAR_CHECK[spec.target]
            invalid = test.format(v=var)
            body = [
                *alias,
                f"if {var} is _M:",
                f"    {missing}",
                f"elif {var} is None:",
                f"    {null}",
            ]
            body += [f"elif {invalid}:", f"    raise Invalid({reason!r}, [{wire!r}])"]
            checks = self._constraints(spec, var, "        ", f", [{wire!r}]")
            return [
                f"    {var} = d.get({wire!r}, _M)",
                f"    if {invalid}:",
                *(f"        {x}" for x in body),
                *(["    else:", *checks] if checks else []),
            ]
        lines = [f"    {var} = d.get({wire!r}, _M)", *(f"    {x}" for x in alias)]
        lines += [
            f"    if {var} is _M:",
            f"        {missing}",
            f"    elif {var} is None:",
            f"        {null}",
        ]
        lines += ["    else:", "        try:", *self._check(spec, var, "            ", 0)]
        return [
            *lines,
            "        except Invalid as e:",
            f"            e.path.append({wire!r})",
            "            raise",
        ]

    def _default(self, f: dataclasses.Field[Any]) -> str | None:
        if f.default is not dataclasses.MISSING:
            return "None" if f.default is None else self.constant(f.default)
        if f.default_factory is not dataclasses.MISSING:
            return f"{self.constant(f.default_factory)}()"
        return None

    def _constraints(self, spec: _Spec, var: str, ind: str, path: str = "") -> list[str]:
        """Statements refusing a ``var`` of the right type that breaks a constraint."""
        lines: list[str] = []
        for keyword, value in spec.checks:
            bound = self.constant(bound_value(keyword, value))
            text = reason_of(keyword, value)
            condition = CONSTRAINTS[keyword][0].format(v=var, k=bound)
            if spec.kind == "any" and keyword in APPLIES_TO:
                condition = f"{APPLIES_TO[keyword].format(v=var)} and {condition}"
            lines += [
                f"{ind}if {condition}:",
                f"{ind}    raise Invalid({text!r}{path})",
            ]
        return lines

    # -- decoding: statements that check ``var`` and replace it by its Python value -----
    def _check(self, spec: _Spec, var: str, ind: str, depth: int) -> list[str]:
        checks = self._constraints(spec, var, ind)
        return [*self._check_type(spec, var, ind, depth), *checks]

    def _check_type(self, spec: _Spec, var: str, ind: str, depth: int) -> list[str]:
        if spec.kind == "any":
            return [f"{ind}pass"]
        if spec.kind == "scalar":
            test, reason = _SCALAR_CHECK[spec.target]
            return [f"{ind}if {test.format(v=var)}:", f"{ind}    raise Invalid({reason!r})"]
        if spec.kind == "enum":
            members = self.constant({m.value: m for m in spec.target})
            types_ = self.constant(frozenset(type(m.value) for m in spec.target))
            return [
                f"{ind}{var} = {members}.get({var}) if type({var}) in {types_} else None",
                f"{ind}if {var} is None:",
                f'{ind}    raise Invalid("is not a known {spec.target.__name__} value")',
            ]
        if spec.kind == "model":
            return [f"{ind}{var} = dec_{self.name(spec.target)}({var})"]
        assert spec.item is not None
        x, out = f"x{depth}", f"o{depth}"
        container = "list" if spec.kind == "list" else "dict"
        lines = [
            f"{ind}if type({var}) is not {container}:",
            f'{ind}    raise Invalid("must be an {"array" if container == "list" else "object"}")',
        ]
        if spec.item.kind == "any" and not spec.item.checks:
            return lines
        null = [] if spec.item.nullable else [f'{ind}            raise Invalid("must not be null")']
        inner = self._check(spec.item, x, ind + "            ", depth + 1)
        if spec.kind == "list":
            lines += [f"{ind}{out} = []", f"{ind}try:", f"{ind}    for {x} in {var}:"]
            lines += [f"{ind}        if {x} is not None:", f"{ind}            pass", *inner]
            if null:
                lines += [f"{ind}        else:", *null]
            lines += [f"{ind}        {out}.append({x})"]
            lines += [
                f"{ind}except Invalid as e:",
                f"{ind}    e.path.append(len({out}))",
                f"{ind}    raise",
            ]
        else:
            k = f"k{depth}"
            lines += [
                f"{ind}{out} = {{}}",
                f"{ind}for {k}, {x} in {var}.items():",
                f"{ind}    try:",
            ]
            lines += [f"{ind}        if {x} is not None:", f"{ind}            pass", *inner]
            if null:
                lines += [f"{ind}        else:", *null]
            lines += [
                f"{ind}    except Invalid as e:",
                f"{ind}        e.path.append(str({k}))",
                f"{ind}        raise",
            ]
            lines += [f"{ind}    {out}[{k}] = {x}"]
        return [*lines, f"{ind}{var} = {out}"]

    # -- encoding: an expression giving the wire value of ``var`` -----------------------
    def _encode(self, spec: _Spec, var: str, depth: int) -> str:
        if spec.kind in ("any", "scalar"):
            return var
        if spec.kind == "enum":
            return f"{var}.value"
        if spec.kind == "model":
            n = self.name(spec.target)
            return f"(enc_{n}({var}) if {var}.__class__ is C_{n} else _raw({var}))"
        assert spec.item is not None
        x = f"x{depth}"
        inner = self._encode(spec.item, x, depth + 1)
        if inner == x:
            return var
        if spec.item.nullable:
            inner = f"(None if {x} is None else {inner})"
        if spec.kind == "list":
            return f"[{inner} for {x} in {var}]"
        return f"{{k{depth}: {inner} for k{depth}, {x} in {var}.items()}}"
