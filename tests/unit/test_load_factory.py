"""``--processor MODULE:FACTORY``: found in the current directory, and every way it can fail
is one clear configuration error instead of a traceback."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from microdcs.app.runner import load_factory
from microdcs.core.errors import ConfigurationError


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"proc_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    return name


def test_a_module_in_the_current_directory_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module(tmp_path, monkeypatch, "def bind(binder):\n    return None\n")
    assert callable(load_factory(f"{name}:bind"))


def test_a_bug_in_the_module_names_the_error_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module(tmp_path, monkeypatch, "x = 1\ny = undefined_name\n")
    with pytest.raises(ConfigurationError) as raised:
        load_factory(f"{name}:bind")
    message = str(raised.value)
    assert "NameError" in message and "undefined_name" in message
    assert f"{name}.py:2" in message


@pytest.mark.parametrize(
    ("spec", "words"),
    [("no_such_module_xyz:bind", "No module named"), ("nocolon", "MODULE:FACTORY")],
)
def test_a_missing_module_or_a_bad_spec(spec: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        load_factory(spec)


def test_a_missing_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module(tmp_path, monkeypatch, "def bind(binder):\n    return None\n")
    with pytest.raises(ConfigurationError, match="has no attribute"):
        load_factory(f"{name}:other")
