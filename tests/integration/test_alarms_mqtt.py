"""The alarm processor through real Mosquitto and Redis: configuration, operator actions
(and their refusal), the alarm events, the retained alarm list and journal queries."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from microdcs.alarms.contract import AlarmState
from microdcs.alarms.options import AlarmsConfig
from microdcs.app.config import AppConfig
from microdcs.app.runtime import Runtime
from microdcs.core.errors import ConfigurationError
from microdcs.plantdata.contract import Quality, TagChange, TagSample
from tests.conftest import running
from tests.mesclient import MesClient, Received, ce_properties, next_message

SCOPE = "line1"
CONFIG_TYPE = "com.github.aschamberger.microdcs.config.alarm.v1"
ACTION_TYPE = "com.github.aschamberger.microdcs.alarm.action.v1"
JOURNAL_TYPE = "com.github.aschamberger.microdcs.alarm.journal.v1"
HIGH = {"ID": "TI-101.H", "Tag": "TI-101", "Kind": "H", "Setpoint": 50, "Deadband": 5,
        "Priority": "high", "Message": "Reactor temperature high"}  # fmt: skip


def alarms_config(config: AppConfig) -> AppConfig:
    prefix = config.jobs_prefix.replace("/jobs", "/alarms")
    return replace(config, alarms=AlarmsConfig(topic_prefix=prefix, publish_interval_seconds=0.1))


def commands(config: AppConfig) -> str:
    return f"{config.alarms.topic_prefix}/{SCOPE}/commands"


async def configure(mes: MesClient, config: AppConfig, runtime: Runtime, alarm: Any) -> None:
    props = ce_properties(CONFIG_TYPE, subject=SCOPE)
    await mes.publish(commands(config), orjson.dumps(alarm), props)
    async with asyncio.timeout(5):
        while alarm["ID"] not in {v.alarm for v in await runtime.alarms.alarms(SCOPE)}:
            await asyncio.sleep(0.02)


async def feed(runtime: Runtime, value: float) -> None:
    """A stored tag change, as plant data hands it to its listeners."""
    now = time.time()
    sample = TagSample("TI-101", value, Quality.GOOD, now, now)
    await runtime.alarms.tags_changed(SCOPE, [TagChange(SCOPE, sample, None)])


async def until_listed(queue: asyncio.Queue[Received], state: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            listed = (await queue.get()).json()
            if [a["State"] for a in listed["Alarms"]] == [state]:
                return dict(listed)


async def test_operator_ack_over_mqtt_changes_redis_and_the_retained_list(
    config: AppConfig,
) -> None:
    config = alarms_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        prefix = config.alarms.topic_prefix
        events = await mes.watch(f"{prefix}/{SCOPE}/events")
        listed = await mes.watch(f"{prefix}/{SCOPE}/alarms")
        await configure(mes, config, runtime, HIGH)
        await feed(runtime, 55.0)
        raised = await next_message(events)
        assert raised.attributes["type"] == "com.github.aschamberger.microdcs.alarm.v1"
        assert raised.json()["Event"] == "raised" and raised.json()["State"] == "unacknowledged"
        await until_listed(listed, "unacknowledged")
        response = await mes.request(
            commands(config), ACTION_TYPE,
            {"Action": "acknowledge", "Alarms": ["TI-101.H"], "Operator": "op-7",
             "Comment": "seen, calling maintenance"},
            subject=SCOPE,
        )  # fmt: skip
        assert "mdcserrorkind" not in response.attributes
        assert response.json()["Outcomes"] == [
            {"Alarm": "TI-101.H", "Done": True, "State": "acknowledged"}
        ]
        (view,) = await runtime.alarms.alarms(SCOPE)  # read back from Redis
        assert view.state is AlarmState.ACKNOWLEDGED and view.operator == "op-7"
        entry = (await until_listed(listed, "acknowledged"))["Alarms"][0]
        assert entry["Operator"] == "op-7" and entry["Comment"] == "seen, calling maintenance"
        ack = await next_message(events)
        assert ack.json()["Event"] == "acknowledge" and ack.json()["Operator"] == "op-7"
        journal = await mes.request(commands(config), JOURNAL_TYPE, {}, subject=SCOPE)
        assert [e["Event"] for e in journal.json()["Entries"]] == ["raised", "acknowledge"]
        assert journal.json()["Entries"][1]["Comment"] == "seen, calling maintenance"


async def test_an_action_not_allowed_gets_an_error_response_and_changes_nothing(
    config: AppConfig,
) -> None:
    config = alarms_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        await configure(mes, config, runtime, HIGH)
        response = await mes.request(
            commands(config), ACTION_TYPE,
            {"Action": "acknowledge", "Alarms": ["TI-101.H", "nope"], "Operator": "op-7"},
            subject=SCOPE,
        )  # fmt: skip
        assert response.attributes["mdcserrorkind"] == "not_allowed"
        assert "nothing to acknowledge" in response.attributes["mdcserrormessage"]
        outcomes = response.json()["Outcomes"]
        assert [(o["Done"], o["Error"]) for o in outcomes] == [
            (False, "not_allowed"), (False, "unknown_alarm")
        ]  # fmt: skip
        assert await runtime.alarms.journal(SCOPE, 0, time.time() + 1) == []
        shelve = await mes.request(
            commands(config), ACTION_TYPE,
            {"Action": "shelve", "Alarms": ["TI-101.H"], "Operator": "op-7"}, subject=SCOPE,
        )  # fmt: skip
        assert shelve.attributes["mdcserrorkind"] == "invalid_request"  # no duration
        (view,) = await runtime.alarms.alarms(SCOPE)
        assert view.state is AlarmState.NORMAL


async def test_a_malformed_alarm_config_is_an_error_and_stores_nothing(config: AppConfig) -> None:
    config = alarms_config(config)
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        bad = [
            {**HIGH, "Setpoint": None},  # wrong type
            {"ID": "x", "Tag": "TI-101", "Kind": "H"},  # no setpoint
            {**HIGH, "Kind": "HHH"},  # unknown kind
            {**HIGH, "Deadband": -1},
            {**HIGH, "OnDelay": 1e9},
            {"ID": "d", "Tag": "TI-101", "Kind": "discrete"},  # no discrete value
        ]
        for alarm in bad:
            response = await mes.request(commands(config), CONFIG_TYPE, alarm, subject=SCOPE)
            assert response.attributes["mdcserrorkind"] in ("invalid_payload", "invalid_request")
        garbage = await mes.request(
            commands(config), CONFIG_TYPE, payload=b"{not json", subject=SCOPE
        )
        assert garbage.attributes["mdcserrorkind"] == "invalid_payload"
        assert await runtime.alarms.alarms(SCOPE) == []


async def test_alarm_file_is_stored_at_start_up_and_changes_nothing_when_unchanged(
    config: AppConfig, tmp_path: Path
) -> None:
    path = tmp_path / "alarms.json"
    low = {**HIGH, "ID": "TI-101.L", "Kind": "L", "Setpoint": 10}
    path.write_bytes(orjson.dumps({SCOPE: [HIGH, low]}))
    config = alarms_config(config)
    config = replace(config, alarms=replace(config.alarms, file=str(path)))
    async with running(config) as runtime:
        async with asyncio.timeout(5):
            while len(await runtime.alarms.alarms(SCOPE)) < 2:
                await asyncio.sleep(0.02)
        version, _ = await runtime.alarms.store.definitions(SCOPE)
    async with running(config) as runtime:  # a restart with the same file
        await asyncio.sleep(0.3)
        assert (await runtime.alarms.store.definitions(SCOPE))[0] == version
        assert {v.alarm for v in await runtime.alarms.alarms(SCOPE)} == {"TI-101.H", "TI-101.L"}


async def test_a_bad_alarm_file_stops_the_start_naming_each_entry(
    config: AppConfig, tmp_path: Path
) -> None:
    path = tmp_path / "alarms.json"
    path.write_bytes(orjson.dumps({SCOPE: [{**HIGH, "Deadband": -1}, {"ID": "x"}]}))
    config = alarms_config(config)
    config = replace(config, alarms=replace(config.alarms, file=str(path)))
    with pytest.raises(ConfigurationError) as raised:
        async with running(config):
            pass
    assert "APP_ALARMS_FILE" in str(raised.value)
    assert "[0]" in str(raised.value) and "[1]" in str(raised.value)
