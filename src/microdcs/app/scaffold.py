"""``microdcs init [DIR]``: a processor project that passes its own ``make test`` at once.

The project holds what a developer edits (a schema, a processor with one handler and one
outgoing event, a test) and what they should not have to write (pyproject, Makefile, the
test fixtures from :mod:`microdcs.testing`). The templates are strings in this module so
an installed ``microdcs`` carries them without package data.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

import microdcs


class ScaffoldError(ValueError):
    """The target cannot take a new project (not empty, or no valid package name)."""


@dataclass(frozen=True, slots=True)
class Project:
    """What the templates are filled with."""

    name: str  # distribution name: the directory's name
    package: str  # import name
    microdcs: str  # what ``make`` installs as microdcs: a checkout's path or "microdcs"

    @property
    def prefix(self) -> str:
        return f"app/{self.package}"

    @property
    def event_base(self) -> str:
        return f"com.example.{self.package}"


SCHEMA = "batches"


def package_name(directory: Path) -> str:
    """``my-cell`` -> ``my_cell``; a leading digit or a keyword gets an underscore."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", directory.resolve().name).strip("_").lower()
    if not name:
        raise ScaffoldError(f"{directory}: no package name can be made of this directory name")
    if name[0].isdigit():
        name = f"p_{name}"
    if keyword.iskeyword(name) or name in ("microdcs", "test", "tests"):
        name = f"{name}_app"
    return name


def microdcs_source() -> str:
    """The checkout this ``microdcs`` runs from (so ``make`` installs the same code), or
    ``microdcs`` when it was installed from a package index."""
    root = Path(microdcs.__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "microdcs"' in pyproject.read_text(encoding="utf-8"):
        return str(root)
    return "microdcs"


def files(project: Project) -> dict[str, str]:
    """Relative path -> content of every file of the project (models excepted)."""
    values = {
        "name": project.name,
        "package": project.package,
        "microdcs": project.microdcs,
        "prefix": project.prefix,
        "event_base": project.event_base,
        "schema": SCHEMA,
    }
    return {path.format(**values): _fill(text, values) for path, text in _TEMPLATES.items()}


def init_project(directory: Path, microdcs_requirement: str | None = None) -> list[Path]:
    """Write the project into ``directory`` (missing or empty) and generate its models;
    returns the files written. Raises :class:`ScaffoldError` when it cannot."""
    if directory.exists() and (
        not directory.is_dir() or any(p.name != ".git" for p in directory.iterdir())
    ):  # a fresh ``git init`` is empty enough
        raise ScaffoldError(f"{directory} exists and is not an empty directory")
    project = Project(
        name=directory.resolve().name,
        package=package_name(directory),
        microdcs=microdcs_requirement or microdcs_source(),
    )
    written = []
    for relative, text in files(project).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    written += generate_project_models(directory, project.package)
    return written


def generate_project_models(directory: Path, package: str) -> list[Path]:
    """Generate the models and their index, as ``make models`` does; [] when the generator
    (datamodel-code-generator) is not installed here: ``make`` installs it and runs it."""
    try:
        from microdcs.codegen.generate import generate_models
    except ModuleNotFoundError:
        return []
    from microdcs.codegen.index import write_index

    models = directory / package / "models"
    generate_models(str(directory / "schemas" / f"{SCHEMA}.schema.json"), str(models))
    index, _ = write_index(models)
    return [models / f"{SCHEMA}.py", index]


def _fill(text: str, values: dict[str, str]) -> str:
    """``{{name}}`` placeholders only: the templates are full of Python and JSON braces."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{{name}}"
version = "0.1.0"
description = "A microdcs processor project (made by microdcs init)"
requires-python = ">=3.11"
dependencies = ["microdcs"]

[project.optional-dependencies]
dev = ["pytest>=8", "pytest-asyncio>=0.23", "datamodel-code-generator>=0.26"]

[tool.setuptools.packages.find]
include = ["{{package}}*"]

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "I", "UP", "B"]

[tool.ruff.lint.isort]
known-first-party = ["{{package}}"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
testpaths = ["tests"]
"""

_MAKEFILE = """\
# make test: a virtualenv in .venv with microdcs and this project (editable), the models
# regenerated from schemas/, then the tests against a real Mosquitto and Redis (both must
# be installed: apt-get install mosquitto redis-server). make run: the runtime with this
# project's processor, against the broker and Redis named by APP_MQTT_* and APP_REDIS_*
# (localhost:1883 and localhost:6379 by default).
PYTHON ?= python3
VENV ?= .venv
# Where microdcs is installed from: the checkout microdcs init ran from, or a package index.
MICRODCS ?= {{microdcs}}
# 1 compiles microdcs's hot path with mypyc (slower to install, faster to run).
export MICRODCS_COMPILE ?= 0

.PHONY: install models test run asyncapi clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
\t$(PYTHON) -m venv $(VENV)
\t$(VENV)/bin/pip install -q --upgrade pip
\t$(VENV)/bin/pip install -q "$(MICRODCS)"
\t$(VENV)/bin/pip install -q -e ".[dev]"
\ttouch $@

models: install
\t$(VENV)/bin/microdcs dataclassgen dataclasses schemas/{{schema}}.schema.json {{package}}/models
\t$(VENV)/bin/microdcs dataclassgen index {{package}}/models

test: models
\t$(VENV)/bin/python -m pytest -q

run: models
\t$(VENV)/bin/microdcs run --processor {{package}}.processor:bind

# The AsyncAPI 3.0 document of what run binds (no broker or Redis needed).
asyncapi: models
\t$(VENV)/bin/microdcs asyncapi --processor {{package}}.processor:bind -o asyncapi.json
\t@echo "wrote asyncapi.json"

clean:
\trm -rf $(VENV) .pytest_cache
"""

_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.com/schemas/{{schema}}.schema.json",
  "title": "Batches",
  "description": "Messages of the {{package}} processor: start a batch, hear that it started.",
  "$defs": {
    "StartBatch": {
      "type": "object",
      "description": "Ask the cell to start a batch.",
      "properties": {
        "BatchId": {"type": "string", "minLength": 1, "description": "The batch to start."},
        "Quantity": {"type": "integer", "minimum": 1, "description": "Pieces to make."}
      },
      "required": ["BatchId", "Quantity"],
      "additionalProperties": false,
      "x-cloudevent-type": "{{event_base}}.startbatch.v1",
      "x-cloudevent-dataschema": "https://example.com/schemas/{{schema}}.schema.json#/$defs/StartBatch",
      "x-response-type": "StartBatchResponse",
      "x-response-copy": ["BatchId"]
    },
    "StartBatchResponse": {
      "type": "object",
      "description": "The answer to StartBatch.",
      "properties": {
        "BatchId": {"type": "string"},
        "Accepted": {"type": "boolean"}
      },
      "required": ["BatchId", "Accepted"],
      "x-cloudevent-type": "{{event_base}}.startbatch.v1",
      "x-cloudevent-dataschema": "https://example.com/schemas/{{schema}}.schema.json#/$defs/StartBatchResponse"
    },
    "BatchStarted": {
      "type": "object",
      "description": "Sent on the processor's events topic when a batch started.",
      "properties": {
        "BatchId": {"type": "string"},
        "Quantity": {"type": "integer"}
      },
      "required": ["BatchId", "Quantity"],
      "x-cloudevent-type": "{{event_base}}.batchstarted.v1",
      "x-cloudevent-dataschema": "https://example.com/schemas/{{schema}}.schema.json#/$defs/BatchStarted"
    }
  }
}
"""

_PROCESSOR = '''\
"""The {{package}} processor: starts batches and says so on its events topic.

Run it with ``make run`` (``microdcs run --processor {{package}}.processor:bind``).
"""

from __future__ import annotations

from microdcs.app.binder import Binder
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction

from {{package}}.models.index import BatchStarted, StartBatch


class BatchProcessor(CloudEventProcessor):
    """Answers StartBatch on ``{{prefix}}/[scope/]commands`` and publishes BatchStarted
    on ``{{prefix}}/[scope/]events`` (the scope is the request's subject)."""

    direction = Direction.NORTHBOUND
    default_prefix = "{{prefix}}"
    emitted = (BatchStarted,)

    @handles(StartBatch)
    async def start(self, message: StartBatch, context: MessageContext) -> Model:
        started = BatchStarted(batch_id=message.batch_id, quantity=message.quantity)
        await self.publish(started, subject=context.subject)
        return message.response(accepted=True)


def bind(binder: Binder) -> None:
    """The processor factory ``microdcs run --processor`` calls once per replica."""
    binder.bind(BatchProcessor(source=binder.source))
'''

_CONFTEST = '''\
"""A real Mosquitto and Redis for the whole session (microdcs.testing starts them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from microdcs.testing import LocalStack, local_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("stack")) as services:
        yield services
'''

_TEST = '''\
"""The processor against a real broker and Redis, through the MQTT wire as an MES sees it."""

from __future__ import annotations

from microdcs.testing import LocalStack, MesClient, running

from {{package}}.models.index import BatchStarted, StartBatch
from {{package}}.processor import BatchProcessor, bind

COMMANDS = f"{BatchProcessor.default_prefix}/line1/commands"
EVENTS = f"{BatchProcessor.default_prefix}/line1/events"


async def test_start_batch_is_answered_and_announced(stack: LocalStack) -> None:
    async with running(stack.config(), [bind]), MesClient(stack.mosquitto.port) as mes:
        await mes.subscribe(EVENTS)
        reply = await mes.request(
            COMMANDS, StartBatch.__ce_type__, {"BatchId": "B-1", "Quantity": 3}
        )
        event = await mes.next(EVENTS)
    assert reply.json() == {"BatchId": "B-1", "Accepted": True}
    assert event.type == BatchStarted.__ce_type__
    assert event.json() == {"BatchId": "B-1", "Quantity": 3}


async def test_a_quantity_below_the_schema_minimum_is_refused(stack: LocalStack) -> None:
    async with running(stack.config(), [bind]), MesClient(stack.mosquitto.port) as mes:
        reply = await mes.request(
            COMMANDS, StartBatch.__ce_type__, {"BatchId": "B-2", "Quantity": 0}
        )
    # An error answer: the CloudEvent extensions name the kind and the field.
    assert reply.attributes["mdcserrorkind"] == "invalid_payload"
    assert "Quantity" in reply.attributes["mdcserrormessage"]
'''

_README = """\
# {{name}}

A microdcs processor project, made by `microdcs init`.

- `schemas/{{schema}}.schema.json`: the messages (JSON Schema 2020-12 with the
  `x-cloudevent-*` keywords). Edit it, then `make models` regenerates
  `{{package}}/models/` (do not edit those files by hand).
- `{{package}}/processor.py`: the processor. One `@handles` method per request type;
  `self.publish(...)` sends an event; `emitted` lists what it publishes.
- `tests/`: tests against a real Mosquitto and Redis (`microdcs.testing`).

`make test` creates `.venv`, installs microdcs (from `MICRODCS`, see the Makefile) and this
project, regenerates the models and runs the tests; Mosquitto and Redis must be installed
(`apt-get install mosquitto redis-server`). `make run` serves the processor on
`{{prefix}}/...` against the broker and Redis in `APP_MQTT_*` / `APP_REDIS_*`.
`make asyncapi` writes `asyncapi.json`, the AsyncAPI 3.0 document of its topics and
messages (payloads from `schemas/`).
"""

_GITIGNORE = """\
.venv/
asyncapi.json
__pycache__/
.pytest_cache/
*.egg-info/
"""

_TEMPLATES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT,
    "Makefile": _MAKEFILE,
    "README.md": _README,
    ".gitignore": _GITIGNORE,
    "schemas/{schema}.schema.json": _SCHEMA,
    "{package}/__init__.py": '"""The {{package}} processor project."""\n',
    "{package}/models/__init__.py": (
        '"""Generated by ``make models`` from ``schemas/``; edit the schema, not these."""\n'
    ),
    "{package}/processor.py": _PROCESSOR,
    "tests/__init__.py": "",
    "tests/conftest.py": _CONFTEST,
    "tests/test_processor.py": _TEST,
}
