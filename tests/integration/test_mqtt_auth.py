"""Issue 14: enhanced authentication (MQTT v5 sections 3.15 and 4.12) and K8S-SAT.

Scripted broker conversations (the harness of ``test_mqtt_conformance``) check the AUTH
exchange byte by byte: the Authentication Method and Data of the CONNECT, a challenge
answered until CONNACK, re-authentication (AUTH 0x19) when the token file is rotated,
and refusals. Azure IoT Operations' broker is the model of K8S-SAT: method ``K8S-SAT``,
the service-account token as Authentication Data.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from microdcs.app.config import load_config
from microdcs.core.errors import ConfigurationError
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.auth import AuthenticationError, K8sSatAuthenticator
from microdcs.transports.mqtt.client import MqttConnectionError
from microdcs.transports.mqtt.options import client_options
from tests.integration.test_mqtt_conformance import (
    connack,
    connect,
    connect_properties,
    make_client,
    packet,
    scripted_broker,
    section,
    utf8,
    wait_for,
)

_U16 = codec._U16


def auth_packet(reason: int, method: str, data: bytes | None = None) -> bytes:
    props = bytes((codec.AUTHENTICATION_METHOD,)) + utf8(method)
    if data is not None:
        props += bytes((codec.AUTHENTICATION_DATA,)) + _U16.pack(len(data)) + data
    return packet(0xF0, bytes((reason,)) + section(props))


def auth_of(sent: codec.Packet) -> tuple[int, dict[int, object]]:
    assert sent.kind == codec.AUTH
    return codec.decode_auth(sent.body)


def write_token(path: Path, token: str) -> None:
    """Replace the token as the kubelet does: a new file swapped in (new inode)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(token + "\n")
    os.replace(fresh, path)


class Challenged:
    """A made-up challenge-response method: the answer is the challenge reversed."""

    method = "TEST-CHALLENGE"
    poll_seconds = 0.0

    def __init__(self) -> None:
        self.challenges: list[bytes | None] = []

    def initial_data(self) -> bytes:
        return b"hello"

    def respond(self, challenge: bytes | None) -> bytes:
        self.challenges.append(challenge)
        return (challenge or b"")[::-1]

    def renewed(self, current: bytes | None) -> bytes | None:
        return None


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "mq-sat"
    write_token(path, "token-one")
    return path


# -- CONNECT ---------------------------------------------------------------------------------
async def test_connect_carries_k8s_sat_method_and_token_section_4_12(token_file: Path) -> None:
    async with scripted_broker() as broker:
        client = make_client(broker, authenticator=K8sSatAuthenticator(str(token_file)))
        _, connect_packet = await connect(broker, client, connack())
        props = connect_properties(connect_packet)
        assert props[codec.AUTHENTICATION_METHOD] == "K8S-SAT"
        assert props[codec.AUTHENTICATION_DATA] == b"token-one"  # trailing newline stripped
        assert client.connected


async def test_token_is_read_again_for_every_connection(token_file: Path) -> None:
    async with scripted_broker() as broker:
        client = make_client(
            broker, authenticator=K8sSatAuthenticator(str(token_file), poll_seconds=0)
        )
        first, _ = await connect(broker, client, connack())
        write_token(token_file, "token-two")
        first.writer.close()
        await client.wait_closed()
        _, connect_packet = await connect(broker, client, connack())
        assert connect_properties(connect_packet)[codec.AUTHENTICATION_DATA] == b"token-two"


async def test_missing_token_file_fails_the_connect_clearly(tmp_path: Path) -> None:
    async with scripted_broker() as broker:
        missing = tmp_path / "absent"
        client = make_client(broker, authenticator=K8sSatAuthenticator(str(missing)))
        with pytest.raises(MqttConnectionError) as failed:
            await client.connect()
        assert "K8S-SAT" in str(failed.value) and str(missing) in str(failed.value)
        assert broker.connections.empty()  # nothing was sent without credentials


# -- the AUTH exchange -----------------------------------------------------------------------
async def test_broker_challenge_is_answered_until_connack_MQTT_4_12_0_2() -> None:
    """AUTH 0x18 from the broker is answered with AUTH 0x18 carrying the same method and
    the authenticator's data (MQTT-4.12.0-2, -5), as often as the broker asks."""
    async with scripted_broker() as broker:
        method = Challenged()
        client = make_client(broker, authenticator=method)
        connecting = asyncio.ensure_future(client.connect())
        conversation = await broker.accept()
        connect_packet = await conversation.expect(codec.CONNECT)
        props = connect_properties(connect_packet)
        assert props[codec.AUTHENTICATION_METHOD] == "TEST-CHALLENGE"
        assert props[codec.AUTHENTICATION_DATA] == b"hello"
        for challenge in (b"abc", b"xyz"):
            await conversation.send(auth_packet(0x18, "TEST-CHALLENGE", challenge))
            reason, answer = auth_of(await conversation.expect(codec.AUTH))
            assert reason == 0x18
            assert answer[codec.AUTHENTICATION_METHOD] == "TEST-CHALLENGE"
            assert answer[codec.AUTHENTICATION_DATA] == challenge[::-1]
        assert not connecting.done()
        await conversation.send(connack())
        await connecting
        assert method.challenges == [b"abc", b"xyz"] and client.connected


async def test_bad_authentication_method_connack_is_refused_and_logged_section_3_2_2_2(
    token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with scripted_broker() as broker:
        client = make_client(broker, authenticator=K8sSatAuthenticator(str(token_file)))
        with caplog.at_level(logging.WARNING), pytest.raises(MqttConnectionError) as refused:
            await connect(broker, client, connack(0x8C))
        assert "bad authentication method" in str(refused.value)
        lines = [r.getMessage() for r in caplog.records if "K8S-SAT" in r.getMessage()]
        assert len(lines) == 1 and "0x8c" in lines[0]
        assert not client.connected


async def test_auth_with_another_method_is_a_protocol_error_MQTT_4_12_0_5(
    token_file: Path,
) -> None:
    async with scripted_broker() as broker:
        client = make_client(broker, authenticator=K8sSatAuthenticator(str(token_file)))
        connecting = asyncio.ensure_future(client.connect())
        conversation = await broker.accept()
        await conversation.expect(codec.CONNECT)
        await conversation.send(auth_packet(0x18, "SCRAM-SHA-1", b"x"))
        refusal = await conversation.expect(codec.DISCONNECT)
        assert refusal.body[:1] == b"\x82"
        with pytest.raises(MqttConnectionError):
            await connecting


async def test_auth_without_enhanced_authentication_is_a_protocol_error_MQTT_4_12_0_6() -> None:
    async with scripted_broker() as broker:
        client = make_client(broker)
        conversation, connect_packet = await connect(broker, client, connack())
        assert codec.AUTHENTICATION_METHOD not in connect_properties(connect_packet)
        await conversation.send(auth_packet(0x18, "K8S-SAT", b"x"))
        refusal = await conversation.expect(codec.DISCONNECT)
        assert refusal.body[:1] == b"\x82"


# -- re-authentication -----------------------------------------------------------------------
async def test_rotated_token_reauthenticates_with_auth_0x19_section_4_12_1(
    token_file: Path,
) -> None:
    """The kubelet rotates the token file: the client sends AUTH 0x19 with the method and
    the new token on the open connection; the broker's AUTH 0x00 completes it."""
    async with scripted_broker() as broker:
        sat = K8sSatAuthenticator(str(token_file), poll_seconds=0.05)
        client = make_client(broker, authenticator=sat)
        conversation, _ = await connect(broker, client, connack())
        write_token(token_file, "token-rotated")
        reason, props = auth_of(await conversation.expect(codec.AUTH, timeout=2))
        assert reason == 0x19
        assert props[codec.AUTHENTICATION_METHOD] == "K8S-SAT"
        assert props[codec.AUTHENTICATION_DATA] == b"token-rotated"
        await conversation.send(packet(0xF0, b""))  # AUTH Success, short form
        await wait_for(lambda: client.reauthentications == 1)
        assert client.connected
        # Once renewed, no new AUTH until the next rotation.
        with pytest.raises(TimeoutError):
            await conversation.next(timeout=0.3)


async def test_file_touched_without_a_new_token_does_not_reauthenticate(
    token_file: Path,
) -> None:
    async with scripted_broker() as broker:
        sat = K8sSatAuthenticator(str(token_file), poll_seconds=0.05)
        client = make_client(broker, authenticator=sat)
        conversation, _ = await connect(broker, client, connack())
        write_token(token_file, "token-one")  # same content, new file
        with pytest.raises(TimeoutError):
            await conversation.next(timeout=0.4)
        assert client.reauthentications == 0


async def test_refused_reauthentication_ends_the_connection_MQTT_4_12_1_2(
    token_file: Path,
) -> None:
    """A broker refusing the new credentials sends DISCONNECT (0x87 here); the client
    closes and a reconnect reads the token file again."""
    async with scripted_broker() as broker:
        sat = K8sSatAuthenticator(str(token_file), poll_seconds=0.05)
        client = make_client(broker, authenticator=sat)
        conversation, _ = await connect(broker, client, connack())
        write_token(token_file, "token-bad")
        await conversation.expect(codec.AUTH, timeout=2)
        await conversation.send(packet(0xE0, b"\x87" + section()))
        async with asyncio.timeout(5):
            await client.wait_closed()
        assert client.reauthentications == 0


# -- the authenticator and its settings ------------------------------------------------------
def test_k8s_sat_renewed_only_when_the_token_changed(token_file: Path) -> None:
    sat = K8sSatAuthenticator(str(token_file))
    assert sat.method == "K8S-SAT"
    current = sat.initial_data()
    assert current == b"token-one"
    assert sat.renewed(current) is None
    write_token(token_file, "token-one")
    assert sat.renewed(current) is None
    write_token(token_file, "token-two")
    assert sat.renewed(current) == b"token-two"
    assert sat.renewed(b"token-two") is None


def test_k8s_sat_serves_several_connections_independently(token_file: Path) -> None:
    """The session and a retained-state probe share one authenticator: a probe reading
    the rotated token first must not hide the rotation from the session."""
    sat = K8sSatAuthenticator(str(token_file))
    session = sat.initial_data()
    write_token(token_file, "token-two")
    probe = sat.initial_data()
    assert probe == b"token-two"
    assert sat.renewed(session) == b"token-two"


def test_k8s_sat_mid_rotation_absence_is_no_renewal(token_file: Path) -> None:
    sat = K8sSatAuthenticator(str(token_file))
    current = sat.initial_data()
    token_file.unlink()
    assert sat.renewed(current) is None
    write_token(token_file, "token-two")
    assert sat.renewed(current) == b"token-two"


def test_k8s_sat_empty_token_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "mq-sat"
    path.write_text("\n")
    with pytest.raises(AuthenticationError, match="empty"):
        K8sSatAuthenticator(str(path)).initial_data()


def test_settings_choose_the_k8s_sat_authenticator(token_file: Path) -> None:
    config = load_config({"APP_MQTT_AUTH_METHOD": "K8S-SAT", "APP_MQTT_SAT_FILE": str(token_file)})
    options = client_options(config.mqtt, "r1")
    assert isinstance(options.authenticator, K8sSatAuthenticator)
    assert options.authenticator.initial_data() == b"token-one"
    assert client_options(load_config({}).mqtt, "r1").authenticator is None


def test_unknown_auth_method_is_refused_by_configuration() -> None:
    with pytest.raises(ConfigurationError, match="APP_MQTT_AUTH_METHOD"):
        load_config({"APP_MQTT_AUTH_METHOD": "KERBEROS"})
