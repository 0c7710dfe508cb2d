"""The start-up log names every bound processor with its topics and types (issue 20, item 6)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from microdcs.app.runner import describe_bindings
from microdcs.examples.greeting import GREETING_TYPE, GreetingProcessor
from microdcs.transports.mqtt.topics import TopicLayout


def binding(processor: Any, prefix: str) -> Any:
    return SimpleNamespace(processor=processor, layout=TopicLayout(prefix))


def test_each_binding_is_one_line_with_topics_handled_and_emitted_types() -> None:
    lines = describe_bindings([binding(GreetingProcessor(), "plant/greeting")], rpc=True)
    assert lines == [
        "processor GreetingProcessor (northbound, also over RPC): "
        "subscribes plant/greeting/[scope/]commands; "
        "publishes plant/greeting/[scope/]data, plant/greeting/[scope/]events, "
        f"plant/greeting/[scope/]metadata; handles {GREETING_TYPE}; emits -"
    ]


def test_no_bindings_no_lines() -> None:
    assert describe_bindings([]) == []
