"""``microdcs dataclassgen index``: one module naming every generated model of a directory.

A processor project imports its messages from one place (``from app.models.index import
StartBatch``) and a tool lists them (``MODELS``) without knowing which schema defined
which class. The index is read from the generated modules' source (no import), so it can
be written before their dependencies are installed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

#: The first line of every module ``microdcs dataclassgen`` writes.
GENERATED_MARK = "by ``microdcs dataclassgen``"
INDEX_MODULE = "index"


@dataclass(frozen=True, slots=True)
class GeneratedModule:
    """A generated module and the classes it defines (models, then enums)."""

    name: str
    models: tuple[str, ...]
    enums: tuple[str, ...]


def generated_modules(directory: Path) -> list[GeneratedModule]:
    """The generated modules of ``directory``, by name; hand-written ones are left out."""
    found = []
    for path in sorted(directory.glob("*.py")):
        if path.stem in (INDEX_MODULE, "__init__"):
            continue
        text = path.read_text(encoding="utf-8")
        if GENERATED_MARK not in text.split("\n", 1)[0]:
            continue
        models: list[str] = []
        enums: list[str] = []
        for node in ast.parse(text, str(path)).body:
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base) for base in node.bases}
                (models if "Model" in bases else enums).append(node.name)
        found.append(GeneratedModule(path.stem, tuple(models), tuple(enums)))
    return found


def render_index(modules: list[GeneratedModule]) -> str:
    """The source of ``index.py`` re-exporting ``modules``' classes (deterministic, one
    name per line: ruff-clean as written)."""
    lines = [
        '"""Every generated model of this package; written by ``microdcs dataclassgen index``.',
        "",
        "Rewritten after each generation; do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from microdcs.models import Model",
        "",
    ]
    names: list[str] = []
    for module in modules:
        classes = sorted((*module.models, *module.enums), key=str.casefold)  # as isort
        if classes:
            lines += [f"from .{module.name} import (", *(f"    {c}," for c in classes), ")"]
            names += classes
    models = [name for module in modules for name in module.models]
    lines += ["", "#: The message classes (the enums are exported too, not listed here)."]
    lines += ["MODELS: tuple[type[Model], ...] = (", *(f"    {m}," for m in models), ")"]
    # ruff's order for __all__: SCREAMING_CASE first, then the classes.
    lines += ["", "__all__ = [", *(f'    "{n}",' for n in ["MODELS", *sorted(names)]), "]"]
    return "\n".join(lines) + "\n"


def write_index(directory: Path) -> tuple[Path, list[GeneratedModule]]:
    """Write ``{directory}/index.py``; returns its path and the modules it indexes."""
    modules = generated_modules(directory)
    target = directory / f"{INDEX_MODULE}.py"
    target.write_text(render_index(modules), encoding="utf-8", newline="\n")
    return target, modules
