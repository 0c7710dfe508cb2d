"""Logs: text or JSON lines on stderr, trace ids from the current span, never a file."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider

from microdcs.app.config import load_config
from microdcs.app.telemetry.logging import configure_logging
from microdcs.core.errors import ConfigurationError


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    logging.getLogger("microdcs.test").info("job %s stored", "j1", extra={"scope": "line1"})
    entry = orjson.loads(out.getvalue().splitlines()[0])
    assert entry["level"] == "INFO"
    assert entry["logger"] == "microdcs.test"
    assert entry["message"] == "job j1 stored"
    assert entry["scope"] == "line1"
    assert entry["time"].endswith("+00:00")
    assert "trace_id" not in entry


def test_json_lines_carry_the_current_span_ids() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handle") as span:
        logging.getLogger("microdcs.test").warning("inside")
    context = span.get_span_context()
    entry = orjson.loads(out.getvalue())
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


def test_exceptions_are_one_json_line() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("microdcs.test").exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert "RuntimeError: boom" in orjson.loads(lines[0])["exception"]


def test_text_format_is_readable_and_level_filters() -> None:
    out = io.StringIO()
    configure_logging("warning", "text", out)
    logging.getLogger("microdcs.test").info("hidden")
    logging.getLogger("microdcs.test").warning("shown")
    assert "hidden" not in out.getvalue()
    assert "WARNING microdcs.test: shown" in out.getvalue()


def test_default_destination_is_stderr_and_no_file() -> None:
    configure_logging("info", "json")
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1
    assert not isinstance(handlers[0], logging.FileHandler)
    assert isinstance(handlers[0], logging.StreamHandler)
    assert handlers[0].stream is sys.stderr


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("info", "xml")


def test_log_format_and_http_port_are_validated_settings() -> None:
    config = load_config({"APP_LOG_FORMAT": "json", "APP_HTTP_PORT": "0"})
    assert (config.log_format, config.http_port) == ("json", 0)
    with pytest.raises(ConfigurationError, match="APP_LOG_FORMAT"):
        load_config({"APP_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigurationError, match="APP_HTTP_PORT"):
        load_config({"APP_HTTP_PORT": "70000"})
