"""``microdcs dataclassgen``: the command-line forms of the generator.

Three forms, the first two named as in the MicroDCS design:

- ``dataclassgen dataclasses SCHEMA [OUTDIR]``: write the models of one schema;
- ``dataclassgen index [OUTDIR]``: write ``OUTDIR/index.py`` re-exporting every generated
  model of ``OUTDIR`` (and list the schemas in ``schemas/``);
- ``dataclassgen SCHEMA [OUTDIR]``: the short form of ``dataclasses``.

A ``SCHEMA`` that is not a file is looked up in ``schemas/`` (the design's form
``dataclasses greetings.schema.json``). Every failure a user can cause (no such schema,
invalid JSON, an unsupported construct, an output that is not a directory) is one line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from microdcs.codegen.index import write_index

DEFAULT_OUTDIR = "generated"
SCHEMAS_DIR = Path("schemas")
USAGE = """\
microdcs dataclassgen dataclasses SCHEMA [OUTDIR]   models of one schema
microdcs dataclassgen index [OUTDIR]                 OUTDIR/index.py of every generated model
microdcs dataclassgen SCHEMA [OUTDIR]                short form of 'dataclasses'
(OUTDIR defaults to generated/; a SCHEMA that is not a file is looked up in schemas/)"""


class UsageError(ValueError):
    """The arguments name no form of the command; the message says what was expected."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dataclassgen`` to the ``microdcs`` command line."""
    gen = commands.add_parser(
        "dataclassgen",
        help="generate model dataclasses from a JSON Schema, or their index module",
        usage=USAGE,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # REMAINDER: options of the design's generator reach run(), which explains them.
    gen.add_argument("words", nargs=argparse.REMAINDER, metavar="ARG", help="see usage")
    gen.set_defaults(handler=lambda args: run(args.words))


def run(words: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one form; returns the exit code (0 written, 1 failed, 2 usage)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        from microdcs.codegen.generate import GeneratorError
    except ModuleNotFoundError as exc:
        err.write(
            f"microdcs dataclassgen: {exc.name} is not installed; the generator needs "
            "datamodel-code-generator (pip install datamodel-code-generator)\n"
        )
        return 1
    try:
        command, rest = _form(words)
        if command == "index":
            return _index(Path(rest[0] if rest else DEFAULT_OUTDIR), out)
        return _dataclasses(rest[0], rest[1] if len(rest) > 1 else DEFAULT_OUTDIR, out)
    except UsageError as exc:
        err.write(f"microdcs dataclassgen: {exc}\nusage:\n{USAGE}\n")
        return 2
    except (GeneratorError, OSError, json.JSONDecodeError) as exc:
        err.write(f"microdcs dataclassgen: {_reason(exc)}\n")
        return 1


#: Options of the MicroDCS design's generator, which this one does without.
DESIGN_OPTIONS = (
    "--imports",
    "--base-class",
    "--config-base-class",
    "--validation",
    "--no-validation",
    "--request-object",
    "--custom-metadata",
    "--hidden-fields",
    "--init-fields",
    "--add-mixin",
    "--template-dir",
    "--collapse-root-workaround",
)


def _form(words: list[str]) -> tuple[str, list[str]]:
    if not words or words[0] in ("-h", "--help"):
        raise UsageError("which form?" if not words else "the forms")
    for word in words:
        option = word.split("=", 1)[0]
        if option in DESIGN_OPTIONS:
            raise UsageError(
                f"{option} (of the MicroDCS design's generator) is not needed here: the "
                "models always validate on decode, and hidden fields, mixins and extra "
                "imports go into a hand-written subclass of a generated class"
            )
        if word.startswith("-"):
            raise UsageError(f"unknown option {word!r} (this generator takes none)")
    head, rest = words[0], words[1:]
    if head == "index":
        if len(rest) > 1:
            raise UsageError(f"index takes at most an OUTDIR, got {' '.join(rest)!r}")
        return "index", rest
    if head == "dataclasses":
        if not rest:
            raise UsageError("dataclasses needs a SCHEMA")
    else:
        rest = words
    if len(rest) > 2:
        raise UsageError(f"expected SCHEMA [OUTDIR], got {' '.join(rest)!r}")
    return "dataclasses", rest


def resolve_schema(schema: str) -> Path:
    """``schema`` as given, else under ``schemas/``; :class:`FileNotFoundError` naming both."""
    path = Path(schema)
    if path.is_file():
        return path
    candidate = SCHEMAS_DIR / schema
    if not path.is_absolute() and candidate.is_file():
        return candidate
    where = f"{schema} (nor {candidate})" if not path.is_absolute() else schema
    raise FileNotFoundError(f"no schema file {where}")


def import_path(outdir: Path, module: str) -> str | None:
    """The dotted module to import ``outdir/module.py`` from the current directory (``src/``
    layouts: from inside ``src``), or None when the path is no package path."""
    try:
        relative = outdir.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return None
    parts = list(relative.parts)
    if parts[:1] == ["src"]:
        parts = parts[1:]
    parts.append(module)
    return ".".join(parts) if all(p.isidentifier() for p in parts) else None


def _dataclasses(schema: str, outdir: str, out: TextIO) -> int:
    from microdcs.codegen.generate import generate_models, module_name

    path = resolve_schema(schema)
    generate_models(str(path), outdir)
    module = module_name(path)
    target = Path(outdir) / f"{module}.py"
    out.write(f"wrote {target} from {path}\n")
    dotted = import_path(Path(outdir), module)
    if dotted is not None:
        out.write(f"import it as: from {dotted} import ...\n")
    return 0


def _index(outdir: Path, out: TextIO) -> int:
    if not outdir.is_dir():
        raise FileNotFoundError(f"no directory {outdir} (generate models into it first)")
    schemas = sorted(SCHEMAS_DIR.glob("**/*.json")) if SCHEMAS_DIR.is_dir() else []
    if schemas:
        out.write("schemas:\n" + "".join(f"  {s}\n" for s in schemas))
    target, modules = write_index(outdir)
    count = sum(len(m.models) + len(m.enums) for m in modules)
    out.write(f"wrote {target}: {count} types from {len(modules)} generated modules\n")
    dotted = import_path(outdir, "index")
    if dotted is not None:
        out.write(f"import it as: from {dotted} import MODELS, ...\n")
    return 0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    if isinstance(exc, json.JSONDecodeError):
        return f"the schema is not valid JSON: {exc}"
    return str(exc)
