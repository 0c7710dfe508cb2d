"""Transport-neutral routing vocabulary: intents, binding directions, scopes.

A *scope* is the station an event concerns. On the wire it is the CloudEvent
``subject`` with ``.`` separators; in MQTT topics the same levels are joined by ``/``.
"""

from __future__ import annotations

from enum import StrEnum

from microdcs.core.errors import ConfigurationError, InvalidRequestError


class Intent(StrEnum):
    """The last topic level: what kind of traffic flows there."""

    COMMANDS = "commands"
    DATA = "data"
    EVENTS = "events"
    METADATA = "metadata"


class Direction(StrEnum):
    """Which side a processor faces; decides what it subscribes to and publishes."""

    NORTHBOUND = "northbound"  # faces the MES
    SOUTHBOUND = "southbound"  # faces equipment

    @property
    def subscribes(self) -> tuple[Intent, ...]:
        if self is Direction.NORTHBOUND:
            return (Intent.COMMANDS,)
        return (Intent.DATA, Intent.EVENTS, Intent.METADATA)

    @property
    def default_intent(self) -> Intent:
        """Where application-triggered events go unless the caller says otherwise."""
        return Intent.EVENTS if self is Direction.NORTHBOUND else Intent.COMMANDS

    @property
    def error_intent(self) -> Intent:
        """Where error events about received events go unless a Response Topic is named.

        Always the processor's own ``events``: for a southbound processor the default
        intent is ``commands``, and bad input from equipment must never become a command
        sent towards equipment.
        """
        return Intent.EVENTS

    @property
    def publishes(self) -> tuple[Intent, ...]:
        if self is Direction.NORTHBOUND:
            return (Intent.DATA, Intent.EVENTS, Intent.METADATA)
        return (Intent.COMMANDS,)


def scope_levels(subject: str | None) -> tuple[str, ...]:
    """Split a subject into scope levels; ``None`` or ``""`` is the root scope."""
    if not subject:
        return ()
    levels = tuple(subject.split("."))
    for level in levels:
        if not level or "/" in level or "+" in level or "#" in level:
            raise InvalidRequestError(f"subject {subject!r} is not a valid scope")
    return levels


def scope_levels_within(subject: str | None, max_levels: int) -> tuple[str, ...]:
    """:func:`scope_levels`, refusing a subject deeper than ``max_levels`` (topics have
    room for that many scope levels between their prefix and their last level)."""
    levels = scope_levels(subject)
    if len(levels) > max_levels:
        raise InvalidRequestError(
            f"subject {subject!r} has {len(levels)} scope levels; at most {max_levels}"
        )
    return levels


def check_topic_prefix(prefix: str, max_levels: int) -> None:
    """Raise :class:`ConfigurationError` unless ``prefix`` can begin our topics."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigurationError("prefix", f"invalid topic prefix {prefix!r}")
    if any(ch in prefix for ch in "+#") or prefix.startswith("$"):
        raise ConfigurationError("prefix", f"wildcards not allowed in {prefix!r}")
    if max_levels < 0:
        raise ConfigurationError("max_levels", "must be >= 0")


def subject_of(levels: tuple[str, ...]) -> str | None:
    """The CloudEvent subject for scope levels (``None`` for the root scope)."""
    return ".".join(levels) if levels else None
