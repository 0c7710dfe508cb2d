"""OPC 10031-4 method ReturnStatus values (a UInt64 bit mask, Table 95)."""

from __future__ import annotations

from enum import IntFlag


class ReturnStatus(IntFlag):
    """What a job method call reports back to the MES."""

    OK = 1
    UNKNOWN_JOB_ORDER_ID = 2
    INVALID_JOB_ORDER_STATUS = 8
    UNABLE_TO_ACCEPT_JOB_ORDER = 16
    INVALID_REQUEST = 1 << 32
