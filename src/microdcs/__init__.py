"""microdcs: a Python runtime for manufacturing control (ISA-95 level 2)."""

from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import MicroDCSError

__all__ = ["CloudEvent", "MicroDCSError"]
__version__ = "0.1.0"
