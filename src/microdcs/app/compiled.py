"""Which modules of microdcs run compiled (mypyc, see ``setup.py``), and which are stale.

A compiled module shadows its ``.py`` source: after editing the source without a rebuild
(``make install`` rebuilds), the old compiled code would still run. :func:`stale` finds
that, so the runtime can say so at start-up and a test can fail on it.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the microdcs package


def _compiled_files(package_dir: Path) -> dict[Path, Path]:
    """Source file -> the compiled extension file next to it."""
    pairs: dict[Path, Path] = {}
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for extension in package_dir.rglob(f"*{suffix}"):
            source = extension.with_name(extension.name[: -len(suffix)] + ".py")
            if source.exists():
                pairs[source] = extension
    return pairs


def compiled(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Dotted names of the modules that have a compiled twin (``transports.mqtt.codec``)."""
    return sorted(
        ".".join(source.relative_to(package_dir).with_suffix("").parts)
        for source in _compiled_files(package_dir)
    )


def stale(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Modules whose source changed after they were compiled."""
    return sorted(
        ".".join(source.relative_to(package_dir).with_suffix("").parts)
        for source, extension in _compiled_files(package_dir).items()
        if source.stat().st_mtime > extension.stat().st_mtime
    )
