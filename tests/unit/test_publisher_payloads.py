"""The retained job payloads: what they encode and what a listed job costs in memory."""

from __future__ import annotations

import tracemalloc

import orjson

from microdcs.publisher.payloads import index_entry, index_payload


def test_an_index_entry_holds_about_its_own_size_of_heap() -> None:
    # The publisher keeps one entry per listed job for as long as the job is listed, so
    # a scope with 40,000 jobs must not pay orjson's 4 KiB output buffer for each.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        entries = [index_entry(f"job-{n:06d}", "Running/Held", n % 2 == 0) for n in range(2000)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(entries) == 2000
    assert held / len(entries) < 300, f"{held / len(entries):.0f} bytes per entry"


def test_the_index_is_the_json_of_its_entries_in_order() -> None:
    entries = [index_entry("A", "Running", False), index_entry('B"\\', "Ended/Completed", True)]
    index = orjson.loads(index_payload(7, "cell1", entries))
    assert index["seq"] == 7 and index["scope"] == "cell1"
    assert index["jobs"] == [
        {"job_order_id": "A", "state": "Running", "has_result": False},
        {"job_order_id": 'B"\\', "state": "Ended/Completed", "has_result": True},
    ]
