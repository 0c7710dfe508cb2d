"""The ``setting`` field helper every options dataclass uses.

Each part of microdcs declares its own options dataclass next to the code that reads it;
the app's configuration module composes them and reads the environment once. The helper
lives here, in the layer everyone may import, so declaring options needs no app import.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def setting(env: str, default: Any, doc: str) -> Any:
    """A configuration field read from environment variable ``env``."""
    return field(default=default, metadata={"env": env, "doc": doc})
