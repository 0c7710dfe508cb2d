"""Model base: mashumaro dataclasses with JSON/msgpack codecs and CloudEvent metadata.

A message class knows its CloudEvent ``type`` and ``dataschema``, and (for requests) the
response class it produces. Fields whose name starts with ``_`` are *hidden*: they never
appear in the payload but travel as CloudEvent extension attributes, so correlation data
an application needs can ride along a request/response chain without touching the wire
schema.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Callable
from typing import Any, ClassVar, Self, TypeVar, Union, get_args, get_origin, get_type_hints

import msgpack
import orjson
from mashumaro.config import BaseConfig
from mashumaro.exceptions import (
    ExtraKeysError,
    InvalidFieldValue,
    MissingDiscriminatorError,
    MissingField,
    SuitableVariantNotFoundError,
)
from mashumaro.mixins.msgpack import DataClassMessagePackMixin
from mashumaro.mixins.orjson import DataClassORJSONMixin

from microdcs.core.cloudevent import ExtensionValue
from microdcs.core.contenttypes import is_json, is_msgpack
from microdcs.core.errors import PayloadDecodeError, PayloadValidationError

T = TypeVar("T")
_MISSING: Any = object()
#: Default deepest nesting of objects and arrays a received payload may have
#: (``APP_LIMIT_NESTING_DEPTH``). orjson encodes at most 254 levels, so deeper data,
#: though it decodes, could never be stored or answered.
MAX_NESTING_DEPTH = 64
_Decoder = Callable[[Any], Any]
_Encoder = Callable[[Any], dict[str, Any]]


def hidden(default: Any = None) -> Any:
    """Declare a hidden field: omitted from payloads, carried as a CloudEvent extension."""
    return dataclasses.field(default=default, metadata={"serialize": "omit"})


def extension_name(field_name: str) -> str:
    """Hidden field ``_job_key`` travels as extension ``jobkey`` (CloudEvents allows a-z0-9)."""
    return field_name.replace("_", "").lower()


class Model(DataClassORJSONMixin, DataClassMessagePackMixin):
    """Base of every typed message; subclasses are ``@dataclass(kw_only=True)``."""

    __ce_type__: ClassVar[str | None] = None
    __ce_dataschema__: ClassVar[str | None] = None
    #: The response class a request of this type produces (response chain).
    __response_type__: ClassVar[type[Model] | None] = None
    #: Attribute names copied from a request into its response.
    __response_copy__: ClassVar[tuple[str, ...]] = ()

    class Config(BaseConfig):
        serialize_by_alias = True
        omit_none = True
        allow_deserialization_not_by_alias = True

    # -- metadata ---------------------------------------------------------------
    @classmethod
    def hidden_fields(cls) -> dict[str, str]:
        """Map of hidden attribute name to extension attribute name, computed once."""
        cached: dict[str, str] | None = cls.__dict__.get("_mdcs_hidden_fields")
        if cached is None:
            cached = {
                f.name: extension_name(f.name)
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.name.startswith("_")
            }
            type.__setattr__(cls, "_mdcs_hidden_fields", cached)
        return cached

    def hidden_extensions(self) -> dict[str, ExtensionValue]:
        """The hidden fields that are set, keyed by extension attribute name."""
        result: dict[str, ExtensionValue] = {}
        for attr, ext in self.hidden_fields().items():
            value = getattr(self, attr)
            if value is not None:
                result[ext] = value
        return result

    def restore_hidden(self, extensions: dict[str, ExtensionValue]) -> None:
        """Fill hidden fields from the extension attributes of the incoming event."""
        for attr, ext in self.hidden_fields().items():
            value = extensions.get(ext)
            if value is not None:
                setattr(self, attr, value)

    # -- codecs -----------------------------------------------------------------
    def encode(self, content_type: str | None) -> bytes:
        """Payload bytes for the given content type (JSON unless msgpack is asked for)."""
        codec = type(self)._codec()
        if codec is None:
            return self.to_msgpack() if is_msgpack(content_type) else self.to_jsonb()
        raw = codec[1](self)
        if is_msgpack(content_type):
            return msgpack.packb(raw)  # type: ignore[no-any-return]
        return orjson.dumps(raw)

    def to_raw(self) -> dict[str, Any]:
        """The payload as a dict of wire names (what :meth:`encode` serialises)."""
        codec = type(self)._codec()
        return codec[1](self) if codec is not None else self.to_dict()

    @classmethod
    def decode(
        cls, data: bytes | None, content_type: str | None, *, max_depth: int = MAX_NESTING_DEPTH
    ) -> Self:
        """Decode and validate a payload; raise the public payload errors on failure.

        Objects and arrays may nest at most ``max_depth`` levels (the payload itself is
        level 1); deeper payloads get :class:`PayloadDecodeError`.
        """
        if is_msgpack(content_type):
            try:
                raw = msgpack.unpackb(data or b"\xc0", raw=False)
            except (ValueError, msgpack.UnpackException, msgpack.ExtraData) as exc:
                raise PayloadDecodeError(f"payload is not valid msgpack: {exc}") from None
            # Every container takes at least one byte: a short payload cannot be deep.
            deep = len(data or b"") > max_depth and nested_deeper(raw, max_depth)
        elif content_type is None or is_json(content_type):
            try:
                raw = orjson.loads(data or b"null")
            except orjson.JSONDecodeError as exc:  # also beyond orjson's 1024 levels
                raise PayloadDecodeError(f"payload is not valid JSON: {exc}") from None
            # Counting brackets runs at C speed and bounds the depth from above; only a
            # payload with more brackets than the limit is walked.
            deep = _brackets(data or b"") > max_depth and nested_deeper(raw, max_depth)
        else:
            raise PayloadDecodeError(f"content type {content_type!r} cannot be decoded")
        if deep:
            raise PayloadDecodeError(_too_deep(max_depth))
        return cls.from_raw(raw)

    @classmethod
    def from_raw(cls, raw: Any) -> Self:
        """Build from a decoded JSON/msgpack value; schema violations name the field."""
        if not isinstance(raw, dict):
            raise PayloadValidationError(None, "payload must be an object")
        codec = cls._codec()
        if codec is None:
            return cls._from_raw_mashumaro(raw)
        try:
            return codec[0](raw)  # type: ignore[no-any-return]
        except _Invalid as exc:
            raise PayloadValidationError(exc.dotted(), exc.reason) from None
        except RecursionError:
            raise PayloadValidationError(None, "payload is nested too deeply") from None

    @classmethod
    def _codec(cls) -> tuple[_Decoder, _Encoder] | None:
        """The compiled decoder and encoder of this class, built at first use."""
        try:
            return cls.__dict__["_mdcs_codec"]  # type: ignore[no-any-return]
        except KeyError:
            pass
        try:
            compiled = _Compiler().compile(cls)
        except _Unsupported:
            type.__setattr__(cls, "_mdcs_codec", None)
            return None
        for model, codec in compiled.items():
            if "_mdcs_codec" not in model.__dict__:
                type.__setattr__(model, "_mdcs_codec", codec)
        return compiled[cls]

    @classmethod
    def _from_raw_mashumaro(cls, raw: dict[str, Any]) -> Self:
        """mashumaro path for models the compiler does not handle (no type checks)."""
        try:
            return cls.from_dict(raw)
        except MissingField as exc:
            raise PayloadValidationError(_wire_name(cls, exc.field_name), "is required") from None
        except InvalidFieldValue as exc:
            raise PayloadValidationError(
                _wire_name(cls, exc.field_name), f"invalid value {exc.field_value!r}"
            ) from None
        except (ExtraKeysError, MissingDiscriminatorError, SuitableVariantNotFoundError) as exc:
            raise PayloadValidationError(None, str(exc)) from None
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise PayloadValidationError(None, f"invalid payload: {exc}") from None
        except RecursionError:
            raise PayloadValidationError(None, "payload is nested too deeply") from None

    # -- response chain -----------------------------------------------------------
    def response(self, **fields: Any) -> Model:
        """Create this request's typed response, copying named and hidden fields."""
        response_type = type(self).__response_type__
        if response_type is None:
            raise TypeError(f"{type(self).__name__} declares no response type")
        values: dict[str, Any] = {name: getattr(self, name) for name in self.__response_copy__}
        values.update(fields)
        response = response_type(**values)
        target_hidden = response_type.hidden_fields()
        for attr in self.hidden_fields():
            if attr in target_hidden and attr not in fields:
                setattr(response, attr, getattr(self, attr))
        return response


def nested_deeper(value: Any, limit: int) -> bool:
    """True when objects and arrays in ``value`` nest more than ``limit`` levels.

    Level by level (no recursion limit to hit, no per-node tuples); stops at the first
    level beyond the limit.
    """
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
    return False


def _brackets(data: bytes) -> int:
    """An upper bound of the nesting depth of JSON ``data`` (brackets in strings count)."""
    return data.count(b"[") + data.count(b"{")


def _too_deep(limit: int) -> str:
    return f"payload is nested more than {limit} levels deep"


def _wire_name(cls: type[Model], field_name: str) -> str:
    """The payload (alias) name of a field, so errors name what the sender wrote."""
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == field_name:
            alias = f.metadata.get("alias")
            return str(alias) if alias else field_name
    return field_name


def _to_raw(model: Model) -> dict[str, Any]:
    return model.to_raw()


# -- fast, validating codec ------------------------------------------------------------
#
# mashumaro neither checks ``str``/``int`` fields nor is fast enough for the budget (model
# decode + encode at most twice plain orjson on the same dict). So each model class gets a
# decoder and an encoder compiled once, at first use, from its dataclass fields: the decoder
# validates (type, required, enum value) while it builds the instance; the encoder writes
# the wire dict directly. Models using mashumaro features the compiler does not know
# (other types, hooks, serialization strategies) keep the plain mashumaro path.


class _Invalid(Exception):
    """A schema violation; ``path`` is collected innermost-first while the stack unwinds."""

    def __init__(self, reason: str, path: list[str | int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = path if path is not None else []

    def dotted(self) -> str | None:
        """``JobOrder.MaterialRequirements[2].Quantity`` (the names the sender wrote)."""
        text = ""
        for part in reversed(self.path):
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or None


class _Unsupported(Exception):
    """The class uses something the compiler does not handle; use mashumaro."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What a field's annotation means on the wire."""

    kind: str  # "any", "scalar", "enum", "model", "list", "dict"
    nullable: bool = False
    target: Any = None  # scalar type name, enum class or model class
    item: _Spec | None = None


_SCALARS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool"}
_SCALAR_CHECK = {
    "str": ("type({v}) is not str", "must be a string"),
    "int": ("type({v}) is not int", "must be an integer"),
    "float": ("type({v}) is not float and type({v}) is not int", "must be a number"),
    "bool": ("type({v}) is not bool", "must be a boolean"),
}
_MASHUMARO_HOOKS = (
    "__pre_deserialize__",
    "__post_deserialize__",
    "__pre_serialize__",
    "__post_serialize__",
)


def _overrides_hooks(cls: type[Model]) -> bool:
    """True when a class between ``cls`` and :class:`Model` defines a mashumaro hook."""
    for klass in cls.__mro__:
        if klass is Model:
            return False
        if any(hook in klass.__dict__ for hook in _MASHUMARO_HOOKS):
            return True
    return False


def _spec(tp: Any) -> _Spec:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise _Unsupported(f"union {tp!r}")
        return dataclasses.replace(_spec(args[0]), nullable=True)
    if tp is Any:
        return _Spec("any", nullable=True)
    if tp in _SCALARS:
        return _Spec("scalar", target=_SCALARS[tp])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _Spec("enum", target=tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        return _Spec("model", target=tp)
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        return _Spec("list", item=_spec(item))
    if origin is dict:
        key, item = get_args(tp) or (str, Any)
        if key is not str:
            raise _Unsupported(f"dict key {key!r}")
        return _Spec("dict", item=_spec(item))
    if tp in (list, dict):
        return _Spec(tp.__name__, item=_Spec("any", nullable=True))
    raise _Unsupported(f"type {tp!r}")


class _Compiler:
    """Writes the source of the decoders/encoders of a model and the models it contains."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "_Invalid": _Invalid,
            "_M": _MISSING,
            "_new": object.__new__,
            "_raw": _to_raw,
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
        if "__slots__" in cls.__dict__ or _overrides_hooks(cls):
            raise _Unsupported(f"{cls.__name__} uses slots or mashumaro hooks")
        config = getattr(cls, "Config", Model.Config)
        for option in dir(BaseConfig):
            if option.startswith("_") or option == "forbid_extra_keys":
                continue
            if getattr(config, option, None) != getattr(Model.Config, option, None):
                raise _Unsupported(f"{cls.__name__}.Config.{option}")
        hints = get_type_hints(cls)
        n = self.names[cls]
        dec = [
            f"def dec_{n}(d):",
            "    if type(d) is not dict:",
            '        raise _Invalid("must be an object")',
        ]
        enc = [f"def enc_{n}(o):", "    d = o.__dict__", "    r = {}"]
        values: list[str] = []
        wires: list[str] = []
        for i, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
            if not set(f.metadata) <= {"alias", "serialize"}:
                raise _Unsupported(f"{cls.__name__}.{f.name} metadata")
            default = self._default(f)
            if f.name.startswith("_") or f.metadata.get("serialize") == "omit":
                if default is None:
                    raise _Unsupported(f"{cls.__name__}.{f.name} hidden without default")
                values.append(f"{f.name!r}: {default}")
                continue
            spec = _spec(hints[f.name])
            wire = str(f.metadata.get("alias") or f.name)
            wires.append(wire)
            var = f"a{i}"
            dec += self._field(spec, var, wire, f.name, default)
            values.append(f"{f.name!r}: {var}")
            expr = self._encode(spec, "v", 0)
            enc += [f"    v = d[{f.name!r}]", "    if v is not None:"]
            enc += [f"        r[{wire!r}] = {expr}"]
        if getattr(config, "forbid_extra_keys", False):
            known = self.constant(frozenset(wires) | {f.name for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
            dec += [
                f"    if not {known}.issuperset(d):",
                f"        x = min(str(k) for k in d if k not in {known})",
                '        raise _Invalid("is not allowed", [x])',
            ]
        dec += [f"    o = _new(C_{n})", f"    o.__dict__ = {{{', '.join(values)}}}"]
        if hasattr(cls, "__post_init__"):
            dec += ["    o.__post_init__()"]
        dec += ["    return o"]
        self.lines += [*dec, *enc, "    return r", ""]

    def _field(self, spec: _Spec, var: str, wire: str, name: str, default: str | None) -> list[str]:
        """Read one field into ``var``; a present, valid scalar takes a single type test."""
        missing = (
            f'raise _Invalid("is required", [{wire!r}])'
            if default is None
            else f"{var} = {default}"
        )
        null = "pass" if spec.nullable else f'raise _Invalid("must not be null", [{wire!r}])'
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
            body += [f"elif {invalid}:", f"    raise _Invalid({reason!r}, [{wire!r}])"]
            return [
                f"    {var} = d.get({wire!r}, _M)",
                f"    if {invalid}:",
                *(f"        {x}" for x in body),
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
            "        except _Invalid as e:",
            f"            e.path.append({wire!r})",
            "            raise",
        ]

    def _default(self, f: dataclasses.Field[Any]) -> str | None:
        if f.default is not dataclasses.MISSING:
            return "None" if f.default is None else self.constant(f.default)
        if f.default_factory is not dataclasses.MISSING:
            return f"{self.constant(f.default_factory)}()"
        return None

    # -- decoding: statements that check ``var`` and replace it by its Python value -----
    def _check(self, spec: _Spec, var: str, ind: str, depth: int) -> list[str]:
        if spec.kind == "any":
            return [f"{ind}pass"]
        if spec.kind == "scalar":
            test, reason = _SCALAR_CHECK[spec.target]
            return [f"{ind}if {test.format(v=var)}:", f"{ind}    raise _Invalid({reason!r})"]
        if spec.kind == "enum":
            members = self.constant({m.value: m for m in spec.target})
            types_ = self.constant(frozenset(type(m.value) for m in spec.target))
            return [
                f"{ind}{var} = {members}.get({var}) if type({var}) in {types_} else None",
                f"{ind}if {var} is None:",
                f'{ind}    raise _Invalid("is not a known {spec.target.__name__} value")',
            ]
        if spec.kind == "model":
            return [f"{ind}{var} = dec_{self.name(spec.target)}({var})"]
        assert spec.item is not None
        x, out = f"x{depth}", f"o{depth}"
        container = "list" if spec.kind == "list" else "dict"
        lines = [
            f"{ind}if type({var}) is not {container}:",
            f'{ind}    raise _Invalid("must be an {"array" if container == "list" else "object"}")',
        ]
        if spec.item.kind == "any":
            return lines
        null = (
            [] if spec.item.nullable else [f'{ind}            raise _Invalid("must not be null")']
        )
        inner = self._check(spec.item, x, ind + "            ", depth + 1)
        if spec.kind == "list":
            lines += [f"{ind}{out} = []", f"{ind}try:", f"{ind}    for {x} in {var}:"]
            lines += [f"{ind}        if {x} is not None:", f"{ind}            pass", *inner]
            if null:
                lines += [f"{ind}        else:", *null]
            lines += [f"{ind}        {out}.append({x})"]
            lines += [
                f"{ind}except _Invalid as e:",
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
                f"{ind}    except _Invalid as e:",
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
