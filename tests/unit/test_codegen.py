"""``microdcs dataclassgen``: committed models match their schemas; the developer workflow."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from microdcs.app.cli import main
from microdcs.codegen import GeneratorError, generate_models, render_module
from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import PayloadValidationError
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles

ROOT = Path(__file__).parents[2]
SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))
GENERATED = ROOT / "generated" / "microdcs_models"
HELLO = ROOT / "tests" / "data" / "models" / "hello.schema.json"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_generated_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_there_are_schemas_to_check() -> None:
    assert [p.name for p in SCHEMAS] == [
        "alarm_action.schema.json",
        "alarm_config.schema.json",
        "alarm_event.schema.json",
        "alarm_journal.schema.json",
        "machinery_jobs.schema.json",
        "plant_data.schema.json",
        "plant_read.schema.json",
        "plant_tag_config.schema.json",
        "processor_metadata.schema.json",
        "sfc_recipe.schema.json",
        "sfc_step_event.schema.json",
    ]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.name)
def test_committed_models_match_their_schema(schema: Path, tmp_path: Path) -> None:
    """Fails when a schema changed without ``make generate``."""
    generate_models(str(schema), str(tmp_path))
    name = schema.name.removesuffix(".schema.json") + ".py"
    assert (tmp_path / name).read_bytes() == (GENERATED / name).read_bytes(), (
        f"generated/microdcs_models/{name} is stale: run `make generate`"
    )


def test_generation_is_deterministic() -> None:
    text = HELLO.read_text()
    assert render_module(text, HELLO.name) == render_module(text, HELLO.name)


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (Path(sys.prefix) / "bin" / "ruff").exists(),
    reason="ruff not installed",
)
def test_generated_code_is_ruff_format_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.prefix) / "bin" / "ruff")
    files = [str(p) for p in sorted(GENERATED.glob("*.py"))]
    result = subprocess.run(
        [ruff, "format", "--check", "--isolated", "--line-length", "100", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_writes_the_module_into_outdir(tmp_path: Path) -> None:
    assert main(["dataclassgen", str(HELLO), str(tmp_path)]) == 0
    assert (tmp_path / "hello.py").read_text().startswith('"""Generated from hello.schema.json')


def schema_with(defs: dict[str, Any]) -> str:
    return json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs})


@pytest.mark.parametrize(
    ("defs", "message"),
    [
        (
            {
                "A": {
                    "type": "object",
                    "properties": {"X": {"type": "string"}},
                    "x-response-type": "B",
                }
            },
            "x-response-type",
        ),
        (
            {
                "A": {
                    "type": "object",
                    "properties": {"X": {"type": "string"}},
                    "x-response-copy": ["X"],
                }
            },
            "x-response-copy needs",
        ),
        ({"E": {"enum": ["a", 1]}}, "enum values"),
    ],
)
def test_unsupported_or_inconsistent_schemas_are_rejected(
    defs: dict[str, Any], message: str
) -> None:
    with pytest.raises(GeneratorError, match=message):
        render_module(schema_with(defs), "bad.schema.json")


def test_schema_file_name_must_make_a_module_name(tmp_path: Path) -> None:
    bad = tmp_path / "my-models.schema.json"
    bad.write_text(schema_with({}))
    with pytest.raises(GeneratorError, match="module name"):
        generate_models(str(bad), str(tmp_path))


# -- the README's developer workflow: schema -> generate -> processor -> run --------------
@pytest.fixture
def hello(tmp_path: Path) -> ModuleType:
    generate_models(str(HELLO), str(tmp_path))
    return load(tmp_path / "hello.py")


def test_generated_hello_models_carry_schema_metadata(hello: ModuleType) -> None:
    assert issubclass(hello.HelloRequest, Model)
    assert hello.HelloRequest.__ce_type__ == "com.example.hello.v1"
    assert hello.HelloRequest.__ce_dataschema__.endswith("#/$defs/HelloRequest")
    assert hello.HelloRequest.__response_type__ is hello.HelloResponse
    assert hello.HelloRequest.__response_copy__ == ("name",)
    assert [m.value for m in hello.Mood] == ["friendly", "formal"]


def test_generated_request_decodes_and_answers_with_its_response(hello: ModuleType) -> None:
    request = hello.HelloRequest.decode(b'{"Name": "Ada", "Mood": "formal"}', "application/json")
    assert request.mood is hello.Mood.FORMAL
    response = request.response(greeting="Good day, Ada.")
    assert isinstance(response, hello.HelloResponse)
    assert response.encode("application/json") == b'{"Name":"Ada","Greeting":"Good day, Ada."}'
    with pytest.raises(PayloadValidationError) as caught:
        hello.HelloRequest.decode(b'{"Name": "Ada", "Mood": "grumpy"}', "application/json")
    assert caught.value.field == "Mood"


async def test_processor_written_on_generated_models_answers_a_cloudevent(
    hello: ModuleType,
) -> None:
    class HelloProcessor(CloudEventProcessor):
        @handles(hello.HelloRequest)
        async def greet(self, message: Any, context: MessageContext) -> Model:
            return message.response(greeting=f"Hello, {message.name}!")  # type: ignore[no-any-return]

    event = CloudEvent(
        type="com.example.hello.v1",
        source="test",
        subject="line1",
        datacontenttype="application/json",
        data=b'{"Name": "Ada"}',
    )
    processor = HelloProcessor(source="hello")
    [response] = await processor.dispatch(event, MessageContext(event=event, transport="test"))
    assert response.type == "com.example.hello.v1"
    assert response.dataschema == hello.HelloResponse.__ce_dataschema__
    assert json.loads(response.data or b"") == {"Name": "Ada", "Greeting": "Hello, Ada!"}
