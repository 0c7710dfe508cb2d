"""Which Response Topics a request may ask for.

A reply goes wherever the request's Response Topic points, with the runtime's broker
credentials. Without a check any client could make the runtime publish into topics that
the broker's ACL denies to that client: onto another replica's response topic (where the
reply completes a pending equipment command) or into the runtime's own command and event
topics (a confused deputy). So a Response Topic must be a valid topic name, must lie
outside every prefix the runtime serves or answers on, and, when the deployment lists
patterns, must match one of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from microdcs.transports.mqtt.wirecheck import topic_problem

#: Distinct Response Topics whose verdict is remembered (MES clients use a handful).
CACHE_SIZE = 1024
#: Longest Response Topic accepted by default, in characters (APP_LIMIT_ATTRIBUTE_LENGTH).
MAX_RESPONSE_TOPIC_CHARS = 1024


def filter_matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (``+`` one level, ``#`` the rest, MQTT-4.7)."""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False
    levels = topic.split("/")
    parts = pattern.split("/")
    for index, part in enumerate(parts):
        if part == "#":
            return True
        if index >= len(levels):
            return False
        if part != "+" and part != levels[index]:
            return False
    return len(parts) == len(levels)


def parse_patterns(text: str) -> tuple[str, ...]:
    """The comma-separated filters of ``APP_MQTT_RESPONSE_TOPIC_ALLOW``."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


class ResponseTopicPolicy:
    """Decides, once per distinct topic, whether a request may name it for its reply."""

    def __init__(
        self,
        denied_prefixes: Iterable[str],
        allowed: Iterable[str] = (),
        *,
        max_chars: int = MAX_RESPONSE_TOPIC_CHARS,
    ) -> None:
        self._max_chars = max_chars
        self._denied = tuple(dict.fromkeys(denied_prefixes))
        self._allowed = tuple(allowed)
        self._verdicts: dict[str, str | None] = {}

    def deny_prefix(self, prefix: str) -> None:
        """Also refuse topics under ``prefix`` (a processor bound later)."""
        if prefix not in self._denied:
            self._denied = (*self._denied, prefix)
            self._verdicts.clear()

    def problem(self, topic: str) -> str | None:
        """Why a reply may not go to ``topic``, or ``None`` when it may."""
        if topic in self._verdicts:
            return self._verdicts[topic]
        verdict = self._judge(topic)
        if len(self._verdicts) >= CACHE_SIZE:
            self._verdicts.clear()
        self._verdicts[topic] = verdict
        return verdict

    def _judge(self, topic: str) -> str | None:
        if len(topic) > self._max_chars:
            return f"longer than {self._max_chars} characters"
        problem = topic_problem(topic)
        if problem is not None:
            return problem
        if topic.startswith("$"):
            return "topics starting with $ are reserved for the broker"
        for prefix in self._denied:
            if topic == prefix or topic.startswith(prefix + "/"):
                return f"under the runtime's own prefix {prefix!r}"
        if self._allowed and not any(filter_matches(p, topic) for p in self._allowed):
            return "not matched by APP_MQTT_RESPONSE_TOPIC_ALLOW"
        return None
