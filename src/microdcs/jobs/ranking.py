"""Where a job stands in its station's queue: its Priority and its planned StartTime.

Pure: the store passes both to its scripts, which keep them with the job, so the
dispatcher ranks queued jobs in Redis without reading their orders.
"""

from __future__ import annotations

from datetime import UTC, datetime

from microdcs_models.machinery_jobs import ISA95JobOrderDataType

#: The Priority of a job order without one (the middle of OPC's Int16 range is 0).
DEFAULT_PRIORITY = 0


def start_time_ms(value: str | None) -> int:
    """``StartTime`` (ISO 8601) in ms since the epoch; 0 when absent or unreadable.

    A StartTime without an offset is read as UTC. An unreadable one does not hold the
    job back: the schema already checked the format, so 0 means "no planned start".
    """
    if not value:
        return 0
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int(when.timestamp() * 1000))


def rank(order: ISA95JobOrderDataType) -> tuple[int, int]:
    """``(Priority, StartTime ms)`` of an order: lower Priority starts first."""
    priority = order.priority if order.priority is not None else DEFAULT_PRIORITY
    return int(priority), start_time_ms(order.start_time)
