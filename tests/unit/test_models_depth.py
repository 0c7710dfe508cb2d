"""The nesting walk stops early on wide payloads but still finds a deep branch."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest

from microdcs.core.errors import PayloadDecodeError
from microdcs.models.base import _msgpack_headers, nested_deeper
from microdcs_models.machinery_jobs import StoreRequest


def chain(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def wide_with_deep_branch(levels: int) -> dict[str, Any]:
    """A StoreRequest with 200 shallow parameters and one value nested ``levels`` deep."""
    parameters = [{"ID": f"P{i}", "Value": {"a": 1}} for i in range(200)]
    parameters.append({"ID": "deep", "Value": chain(levels)})
    return {"JobOrder": {"JobOrderID": "J", "JobOrderParameters": parameters}}


def test_a_bound_above_the_containers_gives_the_same_answer() -> None:
    for levels in (1, 5, 63, 64, 65, 100):
        value = {"wide": [{} for _ in range(50)], "deep": chain(levels)}
        containers = 52 + levels
        expected = nested_deeper(value, 64)
        assert nested_deeper(value, 64, containers) is expected
        assert nested_deeper(value, 64, containers + 1000) is expected
        assert expected is (levels + 1 > 64)


@pytest.mark.parametrize("content_type", ["application/json", "application/msgpack"])
def test_wide_payload_with_a_branch_beyond_the_limit_is_refused(content_type: str) -> None:
    # JobOrder (2), JobOrderParameters (3), a parameter (4): the Value starts at level 5.
    payload = wide_with_deep_branch(61)
    data = orjson.dumps(payload) if "json" in content_type else msgpack.packb(payload)
    with pytest.raises(PayloadDecodeError, match="nested more than 64"):
        StoreRequest.decode(data, content_type)


@pytest.mark.parametrize("content_type", ["application/json", "application/msgpack"])
def test_wide_payload_with_a_branch_at_the_limit_decodes(content_type: str) -> None:
    payload = wide_with_deep_branch(60)
    data = orjson.dumps(payload) if "json" in content_type else msgpack.packb(payload)
    assert len(StoreRequest.decode(data, content_type).job_order.job_order_parameters) == 201


def containers(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(containers(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(containers(v) for v in value)
    return 0


@pytest.mark.parametrize(
    "value",
    [
        {},
        [[], {}],
        {"big": list(range(20)), "map": {str(i): i for i in range(20)}},  # array16, map16
        {"wide": [{} for _ in range(70_000)]},  # array32
        {"text": "\u00e4\u0080" * 10, "ints": [128, 150, 60000, 2**40], "chain": chain(30)},
    ],
    ids=["empty", "fix", "16-bit", "32-bit", "lookalike-bytes"],
)
def test_msgpack_header_count_bounds_the_containers(value: Any) -> None:
    assert _msgpack_headers(msgpack.packb(value)) >= containers(value)
