"""Topic layout ``{prefix}/{scope...}/{intent}``: building, parsing, subscriptions."""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.processing.routing import (
    Intent,
    check_topic_prefix,
    scope_levels_within,
)

_INTENTS = {intent.value: intent for intent in Intent}


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """Topics of one processor binding: a prefix and up to ``max_levels`` scope levels."""

    prefix: str
    max_levels: int = 3

    def __post_init__(self) -> None:
        check_topic_prefix(self.prefix, self.max_levels)

    def _levels(self, subject: str | None) -> tuple[str, ...]:
        return scope_levels_within(subject, self.max_levels)

    def topic(self, subject: str | None, intent: Intent) -> str:
        """The topic for an event of ``subject`` (scope) with ``intent``."""
        levels = self._levels(subject)
        if levels:
            return f"{self.prefix}/{'/'.join(levels)}/{intent.value}"
        return f"{self.prefix}/{intent.value}"

    def scoped(self, subject: str | None, *tail: str) -> str:
        """A topic below the scope, e.g. ``scoped("ww", "order", "J1")``."""
        levels = self._levels(subject)
        return "/".join((self.prefix, *levels, *tail))

    def filters(self, intents: tuple[Intent, ...], share_group: str | None) -> list[str]:
        """Subscription filters for 0..max_levels scope levels, optionally shared."""
        result = []
        for intent in intents:
            for depth in range(self.max_levels + 1):
                plus = "/".join(["+"] * depth)
                base = f"{self.prefix}/{plus}/{intent.value}" if depth else None
                topic = base or f"{self.prefix}/{intent.value}"
                result.append(f"$share/{share_group}/{topic}" if share_group else topic)
        return result

    def parse(self, topic: str) -> tuple[str | None, Intent] | None:
        """``(subject, intent)`` of a topic of this layout, or ``None`` if it is not one."""
        prefix = self.prefix
        if not topic.startswith(prefix) or topic[len(prefix) : len(prefix) + 1] != "/":
            return None
        parts = topic[len(prefix) + 1 :].split("/")
        intent = _INTENTS.get(parts[-1])
        levels = parts[:-1]
        if intent is None or len(levels) > self.max_levels:
            return None
        for level in levels:
            if not level or "." in level:
                return None
        return (".".join(levels) or None), intent
