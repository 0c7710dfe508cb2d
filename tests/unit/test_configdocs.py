"""docs/configuration.md is generated from the configuration object and must not drift."""

from __future__ import annotations

from pathlib import Path

from microdcs.app.configdocs import render


def test_committed_configuration_reference_matches_the_code(repo_root: Path) -> None:
    committed = (repo_root / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), "run: microdcs config-docs > docs/configuration.md"
