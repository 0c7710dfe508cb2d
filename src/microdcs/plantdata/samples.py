"""The samples of a data event, checked one by one before anything is stored.

Data events are the hot path (tens of thousands of samples a second), so their payload is
not decoded into models: each sample is checked here with a few type tests, every bad
one is named (``Samples[3] (tag 'x'): ...``), and the good ones become the flat argument
list of the ingest script. Whether a tag is configured and of the right type only Redis
knows (another replica may have just configured it); the script answers that, and
:func:`describe_refusals` words its answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from microdcs.plantdata.tags import QUALITY_CODES, data_type_of, value_kind
from microdcs_models.plant_data import PlantData

__all__ = ["DATA_TYPE", "describe_refusals", "parse_samples"]

#: CloudEvent type of data events.
DATA_TYPE = PlantData.__ce_type__ or ""
_KEYS = frozenset({"Tag", "Value", "Quality", "Timestamp"})
_QUALITY = {q.value: code for q, code in QUALITY_CODES.items()}
_KIND_NAMES = {"f": "a number", "i": "an integer", "b": "a boolean", "s": "a string"}


def parse_samples(raw: Any, now: float) -> tuple[list[str], list[str], list[str]]:
    """``(tags, script arguments, problems)``: 5 arguments per sample (tag, kind, value,
    quality, source time); each problem names its sample."""
    if not isinstance(raw, dict) or not isinstance(samples := raw.get("Samples"), list):
        return [], [], ["payload: an object with a list 'Samples' is required"]
    if not samples:
        return [], [], ["'Samples' must hold at least one sample"]
    if len(raw) != 1:
        return [], [], [f"payload: unknown field(s) {sorted(set(raw) - {'Samples'})}"]
    tags: list[str] = []
    args: list[str] = []
    problems: list[str] = []
    stamp = repr(now)
    for i, sample in enumerate(samples):
        if type(sample) is not dict:
            problems.append(f"Samples[{i}]: must be an object")
            continue
        tag = sample.get("Tag")
        if type(tag) is not str or not tag:
            problems.append(f"Samples[{i}]: 'Tag' must be a non-empty string")
            continue
        kind = value_kind(sample.get("Value"))
        quality = _QUALITY.get(sample.get("Quality", "good"))
        timestamp = sample.get("Timestamp")
        where = f"Samples[{i}] (tag {tag!r})"
        if kind is None:
            problems.append(f"{where}: 'Value' must be a number, boolean or string")
        elif quality is None:
            problems.append(f"{where}: 'Quality' must be good, uncertain or bad")
        elif timestamp is not None and type(timestamp) not in (int, float):
            problems.append(f"{where}: 'Timestamp' must be a number (Unix seconds)")
        elif len(sample) > 2 and not _KEYS.issuperset(sample):
            problems.append(f"{where}: unknown field(s) {sorted(set(sample) - _KEYS)}")
        else:
            tags.append(tag)
            args += (tag, kind[0], kind[1], quality,
                     stamp if timestamp is None else repr(float(timestamp)))  # fmt: skip
    return tags, args, problems


def describe_refusals(tags: Sequence[str], refusals: Sequence[tuple[int, str]]) -> list[str]:
    """The ingest script's refusals (sample index, ``unknown`` or ``<type><kind>``) in words."""
    words: list[str] = []
    for index, code in refusals:
        where = f"Samples[{index}] (tag {tags[index]!r})"
        if code == "unknown":
            words.append(f"{where}: no such tag in the scope")
        else:
            declared = data_type_of(code[0]).value
            article = "an" if declared == "int" else "a"
            got = _KIND_NAMES.get(code[1], code[1])
            words.append(f"{where}: {article} {declared} tag, got {got}")
    return words
