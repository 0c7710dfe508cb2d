"""From a data event to an alarm event, through real Mosquitto and Redis: the alarm
manager is a listener of the current value table, so a sample over MQTT that crosses a
setpoint raises the alarm, and one back inside its deadband clears it."""

from __future__ import annotations

from dataclasses import replace

from microdcs.alarms.options import AlarmsConfig
from microdcs.app.config import AppConfig
from tests.conftest import running
from tests.integration.test_alarms_mqtt import HIGH, configure
from tests.integration.test_plantdata_helpers import SCOPE, TEMP, define, plant_config, send
from tests.mesclient import MesClient, next_message

ALARM_TYPE = "com.github.aschamberger.microdcs.alarm.v1"


async def test_a_data_event_crossing_a_setpoint_raises_an_alarm_and_a_return_clears_it(
    config: AppConfig,
) -> None:
    alarms = config.jobs_prefix.replace("/jobs", "/alarms")
    config = replace(plant_config(config), alarms=AlarmsConfig(topic_prefix=alarms))
    async with running(config) as runtime, MesClient(config.mqtt.port) as mes:
        events = await mes.watch(f"{alarms}/{SCOPE}/events")
        await define(mes, config, runtime, TEMP)
        await configure(mes, config, runtime, HIGH)  # TI-101 high at 50, deadband 5
        await send(mes, config, {"Tag": "TI-101", "Value": 45.0, "Timestamp": 999.0})
        await send(mes, config, {"Tag": "TI-101", "Value": 55.0, "Timestamp": 1000.0})
        raised = await next_message(events)
        assert raised.attributes["type"] == ALARM_TYPE
        body = raised.json()
        assert (body["Alarm"], body["Event"], body["State"]) == (
            "TI-101.H", "raised", "unacknowledged"
        )  # fmt: skip
        assert body["Value"] == 55.0
        await send(mes, config, {"Tag": "TI-101", "Value": 47.0})  # inside the hysteresis
        await send(mes, config, {"Tag": "TI-101", "Value": 44.0})
        returned = (await next_message(events)).json()
        assert (returned["Event"], returned["State"], returned["Value"]) == (
            "cleared", "returned_unacknowledged", 44.0
        )  # fmt: skip
        assert events.empty()
