"""Settings of plant data (the current value table), declared next to the code that reads
them; the app's configuration composes :class:`PlantDataConfig` as its ``plantdata`` field.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.core.settings import setting


@dataclass(frozen=True, slots=True)
class PlantDataConfig:
    enabled: bool = setting(
        "APP_PLANT_ENABLED",
        True,
        "Keep the current value table of every scope's tags: bind the plant data processor "
        "(tag configuration, data events, reads), run the stale timers and publish the "
        "retained cvt topics.",
    )
    topic_prefix: str = setting(
        "APP_PLANT_TOPIC_PREFIX",
        "app/plant",
        "Topic prefix of the plant data processor: data events on ``{prefix}/{scope}/data``, "
        "tag configuration and reads on ``{prefix}/{scope}/commands``, error events on "
        "``{prefix}/{scope}/events``, each tag's retained value on "
        "``{prefix}/{scope}/cvt/{tag}``. Must differ from the alarm and job prefixes.",
    )
    tags_file: str | None = setting(
        "APP_PLANT_TAGS_FILE",
        None,
        "JSON file of tag definitions stored at start-up: an object mapping each scope to a "
        "list of tag objects with the wire names of ``...config.tag.v1``. It adds and "
        "updates tags, never deletes; a bad file stops the start naming each bad entry.",
    )
    cvt_publish_interval_seconds: float = setting(
        "APP_PLANT_CVT_PUBLISH_INTERVAL_SECONDS",
        0.2,
        "Least time between two publications of one tag's retained cvt topic: values "
        "stored meanwhile are coalesced (the latest wins), so a 10 kHz tag costs at most "
        "1/interval messages per second. 0 publishes every change.",
    )
    stale_rescan_seconds: float = setting(
        "APP_PLANT_STALE_RESCAN_SECONDS",
        1.0,
        "Longest a replica sleeps before looking again for tags that went stale (deadlines "
        "other replicas set); a deadline it knows of is slept to exactly.",
    )
