"""docs/operations.md embeds the generated configuration table; it must not drift.

Refresh it with ``python -m tests.unit.test_operations_doc`` (one generator:
``microdcs.app.configdocs.render``).
"""

from __future__ import annotations

from pathlib import Path

from microdcs.app.config import iter_settings
from microdcs.app.configdocs import render

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BEGIN = "<!-- configuration: generated, do not edit -->\n"
END = "<!-- configuration: end -->\n"


def generated_table() -> str:
    text = render()
    return text[text.index("| variable |") :]


def splice(document: str) -> str:
    """``document`` with the generated table between the markers (appended if missing)."""
    block = BEGIN + generated_table() + END
    if BEGIN in document and END in document:
        head, _, rest = document.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + block + tail
    return document + block


def test_operations_doc_embeds_the_current_configuration_table() -> None:
    document = OPERATIONS.read_text(encoding="utf-8")
    assert BEGIN in document and END in document
    assert document == splice(document), "run: python -m tests.unit.test_operations_doc"


def test_every_setting_is_in_the_operations_doc() -> None:
    document = OPERATIONS.read_text(encoding="utf-8")
    for env, _, _, _ in iter_settings():
        assert f"`{env}`" in document


def test_splice_replaces_only_the_generated_block() -> None:
    stale = "intro\n" + BEGIN + "| old |\n" + END + "outro\n"
    fresh = splice(stale)
    assert fresh.startswith("intro\n" + BEGIN + "| variable |")
    assert fresh.endswith(END + "outro\n")
    assert "| old |" not in fresh


if __name__ == "__main__":
    OPERATIONS.write_text(splice(OPERATIONS.read_text(encoding="utf-8")), encoding="utf-8")
