"""Typed message models: the base class every generated dataclass derives from."""

from microdcs.models.base import Model, hidden

__all__ = ["Model", "hidden"]
