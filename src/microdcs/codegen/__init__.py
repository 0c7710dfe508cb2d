"""``microdcs dataclassgen``: JSON Schema to typed message models on the model base."""

from microdcs.codegen.generate import GeneratorError, generate_models, render_module

__all__ = ["GeneratorError", "generate_models", "render_module"]
