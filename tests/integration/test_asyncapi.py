"""The AsyncAPI documents validate with the official parser (@asyncapi/parser, run by
Node.js from tests/asyncapi; ``make asyncapi-deps`` installs it): the default runtime's,
one with a custom processor declaring @emits, and what ``microdcs asyncapi`` prints."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from microdcs.app.asyncapi import asyncapi_for_config, asyncapi_for_runtime
from microdcs.app.config import AppConfig
from microdcs.app.devstack import free_port
from microdcs_models.sfc_step_event import SfcProgressEvent
from tests.conftest import running

VALIDATOR = Path(__file__).resolve().parents[1] / "asyncapi"

#: A project as a developer has it: a processor module and its schema, in one directory.
OVEN_MODULE = """
from dataclasses import dataclass
from typing import ClassVar

from microdcs.app.binder import Binder
from microdcs.models import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, emits, handles

SCHEMA = "https://example.com/schemas/oven.schema.json"


@dataclass(kw_only=True)
class Heated(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.heated.v1"
    __ce_dataschema__: ClassVar[str] = SCHEMA + "#/$defs/Heated"
    Temperature: float


@dataclass(kw_only=True)
class HeatResponse(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.heat.v1"
    __ce_dataschema__: ClassVar[str] = SCHEMA + "#/$defs/HeatResponse"
    Accepted: bool


@dataclass(kw_only=True)
class Heat(Model):
    __ce_type__: ClassVar[str] = "com.example.oven.heat.v1"
    __ce_dataschema__: ClassVar[str] = SCHEMA + "#/$defs/Heat"
    __response_type__ = HeatResponse
    Setpoint: float


class Oven(CloudEventProcessor):
    default_prefix = "app/oven"

    @emits(Heated)
    @handles(Heat)
    async def heat(self, message: Heat, context: MessageContext) -> Model:
        await self.publish(Heated(Temperature=message.Setpoint), subject=context.subject)
        return message.response(Accepted=True)


def bind(binder: Binder) -> None:
    binder.bind(Oven(source=binder.source))
"""

OVEN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.com/schemas/oven.schema.json",
    "$defs": {
        "Heat": {
            "type": "object",
            "properties": {"Setpoint": {"type": "number", "minimum": 0, "maximum": 400}},
            "required": ["Setpoint"],
            "additionalProperties": False,
        },
        "HeatResponse": {"type": "object", "properties": {"Accepted": {"type": "boolean"}}},
        "Heated": {"type": "object", "properties": {"Temperature": {"type": "number"}}},
    },
}


def validate(document: dict[str, Any]) -> str:
    """The parser's verdict; fails the test with its diagnostics when it finds errors."""
    assert (VALIDATOR / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is not installed: run make asyncapi-deps"
    )
    result = subprocess.run(
        ["node", str(VALIDATOR / "validate.mjs"), "-"],
        input=orjson.dumps(document),
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, output
    return output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ovenproject.py").write_text(OVEN_MODULE, encoding="utf-8")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "oven.schema.json").write_bytes(orjson.dumps(OVEN_SCHEMA))
    return tmp_path


def oven_factory(project: Path) -> Any:
    sys.path.insert(0, str(project))
    try:
        import ovenproject  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(project))
    return ovenproject.bind


async def test_the_default_runtime_document_validates(config: AppConfig) -> None:
    config = replace(config, greeting_enabled=False)  # what microdcs run binds by default
    async with running(config) as runtime:
        document = asyncapi_for_runtime(runtime)
    output = validate(document)
    assert "valid: AsyncAPI 3.0.0" in output
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {
        f"{config.jobs_prefix}/{{scope}}/commands",
        f"{config.jobs_prefix}/{{scope}}/events",
        f"{config.equipment_prefix}/{{scope}}/commands",
        f"{config.alarms.topic_prefix}/{{scope}}/commands",
    } <= addresses
    summaries = [op["summary"] for op in document["operations"].values()]
    assert any(SfcProgressEvent.__ce_type__ in s for s in summaries)  # the step progress
    assert document["servers"]["broker"]["host"] == f"127.0.0.1:{config.mqtt.port}"


async def test_a_custom_processor_with_emits_validates(config: AppConfig, project: Path) -> None:
    factory = oven_factory(project)
    document = await asyncapi_for_config(config, [factory], [project / "schemas"])
    validate(document)
    messages = document["components"]["messages"]
    assert messages["HeatRequest"]["payload"] == {"$ref": "#/components/schemas/oven.Heat"}
    assert messages["Heated"]["payload"] == {"$ref": "#/components/schemas/oven.Heated"}
    assert document["components"]["schemas"]["oven.Heat"]["properties"]["Setpoint"]["maximum"]


def test_the_parser_rejects_a_broken_document(tmp_path: Path) -> None:
    """The check can fail: an operation on a channel that does not exist."""
    broken = {
        "asyncapi": "3.0.0",
        "info": {"title": "broken", "version": "1"},
        "operations": {"x": {"action": "send", "channel": {"$ref": "#/channels/missing"}}},
    }
    result = subprocess.run(
        ["node", str(VALIDATOR / "validate.mjs"), "-"],
        input=orjson.dumps(broken),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout.decode()
    assert b"invalid" in result.stdout


def test_the_cli_prints_a_valid_document_of_a_module_in_the_current_directory(
    project: Path,
) -> None:
    """``--processor mod:bind`` finds ``mod`` in the current directory, and no broker or
    Redis needs to be up to describe what would be bound."""
    env = {
        **os.environ,
        "APP_MQTT_PORT": str(free_port()),
        "APP_REDIS_PORT": str(free_port()),  # nothing listens there
    }
    microdcs = Path(sys.executable).with_name("microdcs")
    result = subprocess.run(
        [str(microdcs), "asyncapi", "--processor", "ovenproject:bind"],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    document = orjson.loads(result.stdout)
    validate(document)
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert "app/oven/{scope}/commands" in addresses and "app/jobs/{scope}/commands" in addresses
    # ./schemas is searched without --schemas: the payload is the project's schema
    assert "oven.Heat" in document["components"]["schemas"]


def test_the_cli_names_a_processor_it_cannot_load(project: Path) -> None:
    microdcs = Path(sys.executable).with_name("microdcs")
    result = subprocess.run(
        [str(microdcs), "asyncapi", "--processor", "nosuchmodule:bind"],
        cwd=project,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"nosuchmodule:bind" in result.stderr


def test_a_new_project_documents_its_processor_with_payloads_from_its_schemas(
    tmp_path: Path,
) -> None:
    """What ``make asyncapi`` of a ``microdcs init`` project runs."""
    from microdcs.app.cli import main

    project = tmp_path / "my-cell"
    assert main(["init", str(project)]) == 0
    command = "microdcs asyncapi --processor my_cell.processor:bind -o asyncapi.json"
    assert command in (project / "Makefile").read_text()
    env = {**os.environ, "APP_REDIS_PORT": str(free_port())}
    microdcs = Path(sys.executable).with_name("microdcs")
    result = subprocess.run(
        [str(microdcs), *command.split()[1:]],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    document = orjson.loads((project / "asyncapi.json").read_bytes())
    validate(document)
    messages = document["components"]["messages"]
    assert messages["StartBatchRequest"]["payload"] == {
        "$ref": "#/components/schemas/batches.StartBatch"
    }
    quantity = document["components"]["schemas"]["batches.StartBatch"]["properties"]["Quantity"]
    assert quantity["minimum"] == 1
    sent = [op["summary"] for op in document["operations"].values() if op["action"] == "send"]
    assert any("batchstarted.v1" in summary for summary in sent)
