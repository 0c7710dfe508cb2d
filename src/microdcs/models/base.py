"""Model base: mashumaro dataclasses with JSON/msgpack codecs and CloudEvent metadata.

A message class knows its CloudEvent ``type`` and ``dataschema``, and (for requests) the
response class it produces. Fields whose name starts with ``_`` are *hidden*: they never
appear in the payload but travel as CloudEvent extension attributes, so correlation data
an application needs can ride along a request/response chain without touching the wire
schema. They travel as one extension attribute per field (``_job_key`` as ``jobkey``) or
all in one ``custommetadata`` extension holding a JSON object of the same names; both are
read on receipt (docs/processors.md says which one we send and why).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Self, TypeVar

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
from microdcs.core.errors import (
    InvalidCloudEventError,
    PayloadDecodeError,
    PayloadValidationError,
)
from microdcs.models.compiler import ModelCompiler, Unsupported
from microdcs.models.constraints import Invalid, check_model

T = TypeVar("T")
#: Default deepest nesting of objects and arrays a received payload may have
#: (``APP_LIMIT_NESTING_DEPTH``). orjson encodes at most 254 levels, so deeper data,
#: though it decodes, could never be stored or answered.
MAX_NESTING_DEPTH = 64
#: The one extension attribute that may carry every hidden field as a JSON object.
CUSTOM_METADATA = "custommetadata"
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

    def hidden_custommetadata(self) -> dict[str, ExtensionValue]:
        """The hidden fields that are set as one ``custommetadata`` extension (a JSON
        object keyed by extension name); empty when none is set."""
        values = self.hidden_extensions()
        if not values:
            return {}
        return {CUSTOM_METADATA: orjson.dumps(values).decode()}

    def restore_hidden(self, extensions: dict[str, ExtensionValue]) -> None:
        """Fill hidden fields from the extension attributes of the incoming event: one
        attribute per field, or the ``custommetadata`` object (a field's own attribute
        wins when both carry it)."""
        hidden = self.hidden_fields()
        if not hidden:
            return
        bundled = extensions.get(CUSTOM_METADATA)
        carried = _custom_metadata(bundled) if bundled is not None else {}
        for attr, ext in hidden.items():
            value = extensions.get(ext)
            if value is None:
                value = carried.get(ext)
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
            # Every container has a header byte of its own: few such bytes, no deep payload.
            headers = _msgpack_headers(data or b"")
            deep = headers > max_depth and nested_deeper(raw, max_depth, headers)
        elif content_type is None or is_json(content_type):
            try:
                raw = orjson.loads(data or b"null")
            except orjson.JSONDecodeError as exc:  # also beyond orjson's 1024 levels
                raise PayloadDecodeError(f"payload is not valid JSON: {exc}") from None
            # Counting brackets runs at C speed and bounds the depth from above; only a
            # payload with more brackets than the limit is walked.
            brackets = _brackets(data or b"")
            deep = brackets > max_depth and nested_deeper(raw, max_depth, brackets)
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
        except Invalid as exc:
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
            compiled = ModelCompiler(Model).compile(cls)
        except Unsupported:
            type.__setattr__(cls, "_mdcs_codec", None)
            return None
        for model, codec in compiled.items():
            if "_mdcs_codec" not in model.__dict__:
                type.__setattr__(model, "_mdcs_codec", codec)
        return compiled[cls]

    @classmethod
    def _from_raw_mashumaro(cls, raw: dict[str, Any]) -> Self:
        """mashumaro path for models the compiler does not handle (no type checks).

        The schema constraints in the field metadata are checked on the decoded instance.
        """
        try:
            model = cls.from_dict(raw)
            check_model(model)
            return model
        except Invalid as exc:
            raise PayloadValidationError(exc.dotted(), exc.reason) from None
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


def _custom_metadata(value: ExtensionValue) -> dict[str, ExtensionValue]:
    """The fields of a received ``custommetadata``: a JSON object of scalar values."""
    try:
        parsed = orjson.loads(value) if isinstance(value, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(v, str | int | bool) or v is None for v in parsed.values()
    ):
        raise InvalidCloudEventError(
            f"extension {CUSTOM_METADATA!r} must be a JSON object of strings, numbers or booleans"
        )
    return {k: v for k, v in parsed.items() if v is not None}


def nested_deeper(value: Any, limit: int, containers: int | None = None) -> bool:
    """True when objects and arrays in ``value`` nest more than ``limit`` levels.

    Level by level (no recursion limit to hit, no per-node tuples); stops at the first
    level beyond the limit. ``containers`` bounds the number of objects and arrays in
    ``value`` from above (the brackets of the JSON text): every level below needs one of
    those not yet seen, so a wide payload is answered once the rest could not reach the
    limit, without walking its lower levels.
    """
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    unseen = len(level) if containers is None else containers
    while level:
        depth += 1
        if depth > limit:
            return True
        unseen -= len(level)
        if containers is not None and depth + unseen <= limit:
            return False
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


#: Bytes that are not a msgpack map or array header (fixmap, fixarray, map/array 16/32).
_NOT_CONTAINER_HEADER = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF))


def _msgpack_headers(data: bytes) -> int:
    """An upper bound of the maps and arrays in msgpack ``data``, counted at C speed.

    Every map and array starts with one of those header bytes; bytes inside strings or
    numbers may look like one too, which only loosens the bound.
    """
    return len(data.translate(None, _NOT_CONTAINER_HEADER))


def _too_deep(limit: int) -> str:
    return f"payload is nested more than {limit} levels deep"


def _wire_name(cls: type[Model], field_name: str) -> str:
    """The payload (alias) name of a field, so errors name what the sender wrote."""
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == field_name:
            alias = f.metadata.get("alias")
            return str(alias) if alias else field_name
    return field_name
