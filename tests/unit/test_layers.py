"""The house keeps its shape: imports point one way, as the table in STYLE.md says.

Every ``import`` in ``src/microdcs`` (``TYPE_CHECKING`` imports included: a dependency for
the type checker is still a dependency) is checked against the layer table below. A domain
package may use another domain only through that domain's ``contract`` module (value
types and small interfaces), and a contract imports nothing but core and processing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "microdcs"

CORE, PROCESSING, TRANSPORTS, STORAGE, DOMAIN, WEB, TOOLS, APP = (
    "core",
    "processing",
    "transports",
    "storage",
    "domain",
    "web",
    "tools",
    "app",
)

#: The first level under ``microdcs`` -> its part. ``""`` is ``microdcs/__init__.py``.
PARTS: dict[str, str] = {
    "": CORE,
    "core": CORE,
    "models": CORE,
    "processing": PROCESSING,
    "transports": TRANSPORTS,
    "storage": STORAGE,
    "jobs": DOMAIN,
    "publisher": DOMAIN,
    "sfc": DOMAIN,
    "equipment": DOMAIN,
    "plantdata": DOMAIN,
    "alarms": DOMAIN,
    "examples": DOMAIN,
    "web": WEB,
    "codegen": TOOLS,
    "app": APP,
    "testing": APP,  # test helpers for processor projects: they start a runtime
}

#: Which parts each part may import (its own part always included).
MAY_IMPORT: dict[str, frozenset[str]] = {
    CORE: frozenset({CORE}),
    PROCESSING: frozenset({CORE, PROCESSING}),
    TRANSPORTS: frozenset({CORE, PROCESSING, TRANSPORTS}),
    STORAGE: frozenset({CORE, STORAGE}),
    DOMAIN: frozenset({CORE, PROCESSING, STORAGE, DOMAIN}),
    WEB: frozenset({CORE, PROCESSING, DOMAIN, WEB}),
    TOOLS: frozenset({CORE, TOOLS}),
    APP: frozenset(PARTS.values()),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the imported module, dotted


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([root.name, *parts])


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every absolute import of our own package in one file (relative ones resolved)."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # ``from microdcs.core import errors`` imports microdcs.core.errors
            targets = [
                f"{base}.{alias.name}" if _is_module(root, base, alias.name) else base
                for alias in node.names
            ]
        else:
            continue
        found.extend(
            Import(module, node.lineno, target)
            for target in targets
            if target == root.name or target.startswith(root.name + ".")
        )
    return found


def _is_module(root: Path, base: str, name: str) -> bool:
    relative = Path(*base.split(".")[1:], name)
    return (root / relative).is_dir() or (root / relative).with_suffix(".py").exists()


def level_of(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return top


def violation(item: Import) -> str | None:
    """Why this import crosses the table, or None when it is allowed."""
    source_top, target_top = level_of(item.module), level_of(item.target)
    if source_top not in PARTS:
        return f"{item.module} is in no part of the layer table"
    if target_top not in PARTS:
        return f"{item.target} is in no part of the layer table"
    source, target = PARTS[source_top], PARTS[target_top]
    if target not in MAY_IMPORT[source]:
        return f"{source} may not import {target}"
    crosses_domains = source in (DOMAIN, WEB) and target == DOMAIN and source_top != target_top
    if crosses_domains and item.target.split(".")[2:3] != ["contract"]:
        return f"another domain only through its contract ({target_top}.contract)"
    is_contract = item.module.split(".")[2:3] == ["contract"]
    if is_contract and target not in (CORE, PROCESSING) and target_top != source_top:
        return "a contract imports only core and processing"
    return None


def violations(root: Path) -> list[str]:
    found: dict[str, None] = {}  # one line per import, in file order
    for path in sorted(root.rglob("*.py")):
        for item in imports_of(path, root):
            reason = violation(item)
            if reason is not None:
                found[f"{item.module}:{item.line} imports {item.target}: {reason}"] = None
    return list(found)


def test_no_import_crosses_the_layer_table() -> None:
    found = violations(PACKAGE)
    assert not found, "\n".join(found)


def test_every_package_has_a_part() -> None:
    tops = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    tops |= {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert tops <= set(PARTS), f"add to the layer table: {sorted(tops - set(PARTS))}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "microdcs"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"transports/mqtt.py": "from microdcs.app.config import AppConfig\n"},
            "transports may not import app",
        ),
        (
            {"storage/redis.py": "import microdcs.processing.pipeline\n"},
            "storage may not import processing",
        ),
        (
            {"publisher/task.py": "from microdcs.jobs.storage import JobStore\n"},
            "through its contract",
        ),
        (
            {
                "sfc/engine.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n"
                    "    from microdcs.transports import mqtt\n"
                )
            },
            "domain may not import transports",
        ),
        (
            {"core/x.py": "from ..processing import routing\n", "processing/routing.py": ""},
            "core may not import processing",
        ),
        (
            {"jobs/contract.py": "from microdcs.storage import keys\n", "storage/keys.py": ""},
            "contract imports only",
        ),
    ],
)
def test_the_scan_finds_a_crossing(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    found = violations(_tree(tmp_path, files))
    assert len(found) == 1 and expected in found[0], found


def test_the_scan_allows_a_contract_and_the_app(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "sfc/engine.py": "from microdcs.equipment.contract import ActionCommand\n",
            "equipment/contract.py": "from microdcs.core import cloudevent\n",
            "app/wiring.py": (
                "from microdcs.transports import mqtt\nfrom microdcs.sfc import engine\n"
            ),
            "core/cloudevent.py": "",
            "transports/mqtt.py": "",
        },
    )
    assert violations(root) == []
