"""Which binding an MQTT topic belongs to, and what the replica subscribes to.

A topic's meaning never changes, so each topic is parsed against the bindings' layouts
once and remembered (bounded); routing a decoded event then only checks its type and
subject against what the topic said.
"""

from __future__ import annotations

from microdcs.core.boundedlog import clip
from microdcs.core.cloudevent import CloudEvent
from microdcs.core.errors import ConfigurationError, InvalidRequestError, UnknownEventTypeError
from microdcs.processing.routing import Intent
from microdcs.transports.mqtt.binding import MqttBinding

#: Distinct topics whose routing is remembered before the memory starts over.
TOPIC_CACHE_SIZE = 4096

#: What one binding's layout makes of a topic: the binding, the subject, the intent.
Fit = tuple[MqttBinding, str | None, Intent]


class Router:
    """The bindings of one handler, with the topic -> binding memory."""

    __slots__ = ("_attribute_length", "_topics", "bindings")

    def __init__(self, *, attribute_length: int) -> None:
        self._attribute_length = attribute_length
        self.bindings: list[MqttBinding] = []
        #: topic -> what each binding's layout makes of it
        self._topics: dict[str, list[Fit]] = {}

    def add(self, binding: MqttBinding) -> None:
        """Route ``binding``'s prefix to it; refuses a prefix overlapping another one."""
        layout = binding.layout
        for other in self.bindings:
            a, b = other.layout.prefix, layout.prefix
            if a != b and (a.startswith(b + "/") or b.startswith(a + "/")):
                # Both subscriptions would match one topic: the broker sends two copies.
                raise ConfigurationError("prefix", f"topic prefixes {a!r} and {b!r} overlap")
        self.bindings.append(binding)
        self._topics.clear()

    def parsed(self, topic: str) -> list[Fit]:
        """``(binding, subject, intent)`` for every binding whose layout the topic fits."""
        parsed = self._topics.get(topic)
        if parsed is None:
            parsed = []
            for binding in self.bindings:
                fit = binding.layout.parse(topic)
                if fit is not None:
                    parsed.append((binding, *fit))
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()  # scopes come and go; stay bounded
            self._topics[topic] = parsed
        return parsed

    def binding_for_topic(self, topic: str) -> MqttBinding | None:
        """The first binding the topic fits, e.g. to answer a request that did not decode."""
        parsed = self.parsed(topic)
        return parsed[0][0] if parsed else None

    def route(self, topic: str, event: CloudEvent) -> tuple[MqttBinding, Intent]:
        """The binding whose processor handles ``event`` on ``topic``; fills the subject."""
        parsed = self.parsed(topic)
        mismatch: str | None = None
        for binding, subject, intent in parsed:
            if not binding.processor.handles_type(event.type):
                continue
            if event.subject is not None and event.subject != subject:
                mismatch = (
                    f"subject {clip(event.subject, 100)!r} does not match topic scope "
                    f"{clip(subject or '', 100)!r}"
                )
                continue
            if subject is not None and len(subject) > self._attribute_length:
                raise InvalidRequestError(
                    f"topic scope longer than {self._attribute_length} characters"
                )
            event.subject = subject
            return binding, intent
        if mismatch is not None:
            raise InvalidRequestError(mismatch)
        if not parsed:
            raise InvalidRequestError(f"no processor is bound to topic {clip(topic, 200)!r}")
        raise UnknownEventTypeError(
            f"no handler for CloudEvent type {clip(event.type, 200)!r} on {clip(topic, 200)!r}"
        )

    def request_filters(self, group: str | None) -> list[str]:
        """The request topic filters of every binding, shared in ``group`` unless None."""
        filters: list[str] = []
        for binding in self.bindings:
            filters += binding.layout.filters(binding.processor.subscribes, group)
        return list(dict.fromkeys(filters))

    def subscriptions(
        self, response_topic: str, *, group: str | None, processing: bool
    ) -> list[tuple[str, int]]:
        """Filters (QoS 1) of every binding (when ``processing``) and the response topic.

        ``group`` None or empty: plain subscriptions (no ``$share/``).
        """
        filters = self.request_filters(group or None) if processing else []
        filters.append(response_topic)
        return [(f, 1) for f in dict.fromkeys(filters)]
