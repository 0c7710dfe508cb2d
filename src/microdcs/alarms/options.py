"""Settings of the alarm runtime, declared next to the code that reads them.

The app's configuration composes :class:`AlarmsConfig` as one field (``alarms``) and fills
it from the environment once; the alarm package takes it as a plain value.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.core.settings import setting


@dataclass(frozen=True, slots=True)
class AlarmsConfig:
    enabled: bool = setting(
        "APP_ALARMS_ENABLED",
        True,
        "Evaluate alarm definitions on every stored tag change, run the alarm timers and "
        "bind the alarm processor (configuration and operator actions).",
    )
    topic_prefix: str = setting(
        "APP_ALARMS_TOPIC_PREFIX",
        "app/alarms",
        "Topic prefix of the alarm processor: ``{prefix}/{scope}/commands`` takes alarm "
        "configuration, operator actions and journal queries, ``{prefix}/{scope}/events`` "
        "carries an alarm event per transition, ``{prefix}/{scope}/alarms`` (retained) the "
        "list of alarms not in Normal.",
    )
    journal_maxlen: int = setting(
        "APP_ALARMS_JOURNAL_MAXLEN",
        100_000,
        "Approximate length each scope's alarm journal (a Redis stream of every transition "
        "and operator action) is trimmed to.",
    )
    publish_interval_seconds: float = setting(
        "APP_ALARMS_PUBLISH_INTERVAL_SECONDS",
        0.5,
        "Least time between two publications of a scope's retained alarm list: changes "
        "made meanwhile are coalesced into the next one.",
    )
    timer_rescan_seconds: float = setting(
        "APP_ALARMS_TIMER_RESCAN_SECONDS",
        0.25,
        "Longest a replica sleeps before looking again for alarm timers (on-delay, "
        "off-delay, shelve expiry) that other replicas set; its own wake it at once, and "
        "a due timer is slept to exactly. A timer of a replica that died fires on another "
        "within this of its due time.",
    )
    timer_lease_seconds: float = setting(
        "APP_ALARMS_TIMER_LEASE_SECONDS",
        5.0,
        "A replica that claimed a due timer and died before storing its transition leaves "
        "it to another replica after this.",
    )
    definitions_refresh_seconds: float = setting(
        "APP_ALARMS_DEFINITIONS_REFRESH_SECONDS",
        1.0,
        "How often a replica re-reads a scope's alarm definitions when a tag without "
        "alarms changes (a tag with alarms checks the definitions' version on every "
        "change, in the same round trip as the alarm versions).",
    )
    file: str | None = setting(
        "APP_ALARMS_FILE",
        None,
        "JSON file of alarm definitions stored at start-up: an object mapping each scope "
        "to a list of alarm objects with the wire names of ``...config.alarm.v1``. It adds "
        "and updates definitions, never deletes; a bad file stops the start naming each "
        "bad entry.",
    )
    kpi_interval_seconds: float = setting(
        "APP_ALARMS_KPI_INTERVAL_SECONDS",
        10.0,
        "How often the alarm KPIs (ISA-18.2: rate per 10 minutes, flood, standing, "
        "chattering, ...) are computed from the journal for the metrics endpoint.",
    )
    kpi_window_seconds: float = setting(
        "APP_ALARMS_KPI_WINDOW_SECONDS",
        86_400.0,
        "The journal window the alarm KPIs are computed over (the last 24 hours).",
    )
