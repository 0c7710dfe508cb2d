"""Which MQTT broker the integration tests run against, and which tests run on both.

The suite runs against Mosquitto; ``MICRODCS_TEST_BROKER=ejabberd`` runs it against
ejabberd's ``mod_mqtt``, a second, independent MQTT v5 implementation (and one without
shared subscriptions, so the runtime's plain-subscription mode with its ingress lease is
what serves there). The second pass takes the modules of :data:`SECOND_BROKER_MODULES`
(``-m second_broker``); a test in them that needs a Mosquitto feature is skipped there
with the feature named (:data:`MOSQUITTO_ONLY`). ``test_ejabberd.py`` runs in every
pass on an ejabberd of its own.
"""

from __future__ import annotations

import os

from microdcs.app.devstack import LocalEjabberd

BROKER = os.environ.get("MICRODCS_TEST_BROKER", "mosquitto")
if BROKER not in ("mosquitto", "ejabberd"):
    raise RuntimeError(f"MICRODCS_TEST_BROKER={BROKER!r}: mosquitto or ejabberd")

#: Integration tests whose subject is the runtime's MQTT behaviour, not Mosquitto's.
SECOND_BROKER_MODULES = (
    "tests/integration/test_greeting_roundtrip.py",
    "tests/integration/test_jobs_scenarios.py",
    "tests/integration/test_publisher.py",
    "tests/integration/test_lifecycle.py",
    "tests/integration/test_no_shared_subscriptions.py",
    "tests/integration/test_hostile_mqtt.py",
    "tests/integration/test_bad_input.py",
    "tests/integration/test_jobs_malformed.py",
    "tests/integration/test_sfc_scenarios.py",
    "tests/integration/test_dead_replica.py",
    "tests/integration/test_mqtt_v5_session.py",
    "tests/integration/test_mqtt_auth.py",
    "tests/integration/test_response_expiry.py",
    "tests/integration/test_response_mode.py",
)

#: Test (node id prefix) -> the Mosquitto feature it relies on; skipped on ejabberd.
MOSQUITTO_ONLY: dict[str, str] = {
    "tests/integration/test_hostile_mqtt.py::test_wildcard_response_topic_gets_no_reply": (
        "Mosquitto forwards a Response Topic with wildcards for the runtime to refuse; "
        "ejabberd disconnects the MES for it (Malformed Packet, MQTT-3.3.2-14)"
    ),
    "tests/integration/test_hostile_mqtt.py::test_requests_that_expired_in_the_queue": (
        "Mosquitto sends up to Receive Maximum messages in flight, so requests wait in the "
        "replica's queue; ejabberd keeps one unacknowledged message per session"
    ),
    "tests/integration/test_bad_input.py::test_odd_correlation_data_is_echoed": (
        "Mosquitto passes an empty Correlation Data property through; ejabberd drops it"
    ),
    "tests/integration/test_dead_replica.py": (
        "a dead replica's share of a shared subscription (ejabberd has none: the ingress "
        "lease of tests/integration/test_no_shared_subscriptions.py covers it)"
    ),
}


def login() -> tuple[str | None, str | None]:
    """User name and password for the test broker (ejabberd wants a non-empty pair)."""
    if BROKER == "ejabberd":
        return LocalEjabberd.username, LocalEjabberd.password
    return None, None
