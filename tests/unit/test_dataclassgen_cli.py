"""Every form of ``microdcs dataclassgen`` (issue 20, item 2): what it writes, what it
prints, and one line instead of a traceback for each mistake a user can make."""

from __future__ import annotations

import importlib
import io
import shutil
import sys
from pathlib import Path

import pytest

from microdcs.app.cli import main
from microdcs.codegen.command import run

HELLO = Path(__file__).resolve().parents[1] / "data" / "models" / "hello.schema.json"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "schemas").mkdir()
    shutil.copy(HELLO, tmp_path / "schemas" / "hello.schema.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def dataclassgen(*words: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(words), out, err)
    return code, out.getvalue(), err.getvalue()


def test_dataclasses_form_writes_the_module_and_names_the_import(project: Path) -> None:
    code, out, _ = dataclassgen("dataclasses", "schemas/hello.schema.json", "app/models")
    assert code == 0
    assert (project / "app" / "models" / "hello.py").is_file()
    assert out == (
        "wrote app/models/hello.py from schemas/hello.schema.json\n"
        "import it as: from app.models.hello import ...\n"
    )


def test_dataclasses_form_finds_a_bare_schema_name_in_schemas_and_defaults_outdir(
    project: Path,
) -> None:
    code, out, _ = dataclassgen("dataclasses", "hello.schema.json")
    assert code == 0
    assert (project / "generated" / "hello.py").is_file()
    assert "from generated.hello import" in out


def test_short_form_is_kept(project: Path) -> None:
    assert main(["dataclassgen", "schemas/hello.schema.json", "out"]) == 0
    assert (project / "out" / "hello.py").is_file()


def test_short_form_defaults_outdir_to_generated(project: Path) -> None:
    code, out, _ = dataclassgen("hello.schema.json")
    assert code == 0
    assert (project / "generated" / "hello.py").is_file()
    assert out.startswith("wrote generated/hello.py from schemas/hello.schema.json\n")


def test_index_form_defaults_outdir_to_generated(project: Path) -> None:
    dataclassgen("hello.schema.json")
    code, out, _ = dataclassgen("index")
    assert code == 0
    assert (project / "generated" / "index.py").is_file()
    assert "import it as: from generated.index import MODELS, ...\n" in out


def test_the_design_forms_work_through_the_command_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dataclassgen", "dataclasses", "hello.schema.json", "cli"]) == 0
    assert main(["dataclassgen", "index", "cli"]) == 0
    assert {p.name for p in (project / "cli").iterdir()} >= {"hello.py", "index.py"}
    assert "wrote cli/index.py" in capsys.readouterr().out


def test_help_lists_every_form(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dataclassgen", "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    for form in ("dataclasses SCHEMA [OUTDIR]", "index [OUTDIR]", "dataclassgen SCHEMA [OUTDIR]"):
        assert form in usage


def test_src_layout_import_path_starts_below_src(project: Path) -> None:
    _, out, _ = dataclassgen("hello.schema.json", "src/plant/models")
    assert "from plant.models.hello import" in out


def test_index_form_writes_an_importable_index_of_the_generated_types(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataclassgen("dataclasses", "hello.schema.json", "pkg/models")
    (project / "pkg" / "models" / "handwritten.py").write_text("class Mine: ...\n")
    code, out, _ = dataclassgen("index", "pkg/models")
    assert code == 0
    assert "schemas/hello.schema.json" in out
    assert "wrote pkg/models/index.py: 3 types from 1 generated modules" in out
    monkeypatch.syspath_prepend(str(project))
    index = importlib.import_module("pkg.models.index")
    try:
        assert [m.__name__ for m in index.MODELS] == ["HelloRequest", "HelloResponse"]
        assert index.Mood.FRIENDLY.value == "friendly"
        assert "Mine" not in index.__all__
    finally:
        for name in [n for n in sys.modules if n.startswith("pkg")]:
            del sys.modules[name]


def test_the_index_is_ruff_clean(project: Path) -> None:
    import subprocess

    dataclassgen("dataclasses", "hello.schema.json", "m")
    dataclassgen("index", "m")
    ruff = Path(sys.executable).parent / "ruff"
    for args in (["check", "--select", "E,F,I,RUF", "m/index.py"], ["format", "--check", "m"]):
        result = subprocess.run([str(ruff), *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("words", "code", "message"),
    [
        (["dataclasses", "missing.json"], 1, "no schema file missing.json (nor schemas/missing"),
        (["missing.json"], 1, "no schema file missing.json"),
        (["dataclasses"], 2, "dataclasses needs a SCHEMA"),
        (["index", "nowhere"], 1, "no directory nowhere"),
        (["index", "a", "b"], 2, "index takes at most an OUTDIR"),
        (["a.json", "b", "c"], 2, "expected SCHEMA [OUTDIR]"),
        ([], 2, "which form?"),
        (["dataclasses", "hello.schema.json", "--validation"], 2, "--validation (of the MicroDCS"),
        (["dataclasses", "x.json", "--hidden-fields=_h->str"], 2, "--hidden-fields (of the"),
        (["hello.schema.json", "--frobnicate"], 2, "unknown option '--frobnicate'"),
    ],
)
def test_mistakes_end_in_one_line_and_an_exit_code(
    project: Path, words: list[str], code: int, message: str
) -> None:
    got, out, err = dataclassgen(*words)
    assert (got, out) == (code, "")
    assert err.startswith(f"microdcs dataclassgen: {message}")
    assert "Traceback" not in err


def test_invalid_json_and_unsupported_names_are_one_line(project: Path) -> None:
    (project / "schemas" / "broken.schema.json").write_text("{nope")
    (project / "schemas" / "bad-name.schema.json").write_text("{}")
    assert dataclassgen("broken.schema.json")[2].startswith(
        "microdcs dataclassgen: the schema is not valid JSON"
    )
    assert "'bad-name' is not a valid module name" in dataclassgen("bad-name.schema.json")[2]
