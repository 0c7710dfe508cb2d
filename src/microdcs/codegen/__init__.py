"""``microdcs dataclassgen``: JSON Schema to typed message models on the model base.

The generator's names are loaded on first use (PEP 562): ``datamodel-code-generator``
brings pydantic with it (about 25 MB of RSS and 0.3 s of start-up), and ``microdcs run``
imports this package only to register the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from microdcs.codegen.generate import GeneratorError, generate_models, render_module

__all__ = ["GeneratorError", "generate_models", "render_module"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from microdcs.codegen import generate

        return getattr(generate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
