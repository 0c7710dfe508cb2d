"""The compiled hot path: present after ``make install``, never older than its source."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import time
from pathlib import Path

import pytest

from microdcs.app import compiled

SETUP = Path(__file__).resolve().parents[2] / "setup.py"


def _listed_in_setup() -> list[str]:
    names = []
    for line in SETUP.read_text().splitlines():
        line = line.strip().strip('",')
        if line.startswith("src/microdcs/") and line.endswith(".py"):
            names.append(line.removeprefix("src/microdcs/").removesuffix(".py").replace("/", "."))
    return sorted(names)


def test_no_compiled_module_is_older_than_its_source() -> None:
    assert compiled.stale() == [], "a module changed after it was compiled: run make install"


@pytest.mark.skipif(os.environ.get("MICRODCS_COMPILE") == "0", reason="pure install asked for")
def test_the_hot_path_modules_of_setup_py_run_compiled() -> None:
    """``make test`` must measure and test what ships: the build must not have fallen
    back to pure Python silently (it needs a C compiler, part of the toolchain)."""
    expected = _listed_in_setup()
    assert expected, "setup.py lists no modules"
    assert compiled.compiled() == expected
    for name in expected:
        module = importlib.import_module(f"microdcs.{name}")
        assert not str(module.__file__).endswith(".py"), f"{name} was loaded from source"


def test_stale_finds_a_source_edited_after_compiling(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    fresh_source, fresh_ext = package / "a.py", package / f"a{suffix}"
    old_source, old_ext = package / "sub" / "b.py", package / "sub" / f"b{suffix}"
    now = time.time()
    for path, stamp in ((fresh_source, now - 10), (fresh_ext, now), (old_ext, now - 10)):
        path.write_text("")
        os.utime(path, (stamp, stamp))
    old_source.write_text("")
    os.utime(old_source, (now, now))
    (package / "lonely.py").write_text("")  # no compiled twin: not listed
    assert compiled.compiled(package) == ["a", "sub.b"]
    assert compiled.stale(package) == ["sub.b"]
