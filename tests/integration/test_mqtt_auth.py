"""Issue 14: enhanced authentication (MQTT v5 sections 3.15 and 4.12) and K8S-SAT.

Scripted broker conversations (the harness of ``test_mqtt_conformance``) check the AUTH
exchange byte by byte: the Authentication Method and Data of the CONNECT, a challenge
answered until CONNACK, re-authentication (AUTH 0x19) when the token file is rotated,
and refusals. Azure IoT Operations' broker is the model of K8S-SAT: method ``K8S-SAT``,
the service-account token as Authentication Data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from microdcs.app.config import AppConfig, load_config
from microdcs.app.devstack import LocalMosquitto
from microdcs.core.errors import ConfigurationError
from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.auth import AuthenticationError, K8sSatAuthenticator
from microdcs.transports.mqtt.client import MqttClient, MqttConnectionError
from microdcs.transports.mqtt.options import client_options
from tests import brokers
from tests.conftest import make_config, running
from tests.integration.test_deployments_doc import SCOPE, documented
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
from tests.integration.test_redis_tls_sentinel import Certificates, certificates, store_job
from tests.mesclient import MesClient

_U16 = codec._U16
__all__ = ["certificates"]  # a fixture used below


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


# -- the K8S-SAT deployment, end to end ------------------------------------------------------
def _raw(framed: codec.Packet) -> bytes:
    return (
        bytes(((framed.kind << 4) | framed.flags,)) + codec.encode_varint(framed.size) + framed.body
    )


def _strip_auth(body: bytes) -> tuple[object, object, bytes]:
    """(method, data, the CONNECT body without them) of our client's CONNECT."""
    pos = 2 + ((body[0] << 8) | body[1]) + 4  # protocol name, version, flags, keep alive
    props, end = codec.decode_properties(body, pos, len(body))
    kept = b""
    for ident, width in (
        (codec.SESSION_EXPIRY, 4),
        (codec.RECEIVE_MAXIMUM, 2),
        (codec.TOPIC_ALIAS_MAXIMUM, 2),
    ):
        value = props.get(ident)
        if isinstance(value, int):
            kept += bytes((ident,)) + value.to_bytes(width, "big")
    method = props.get(codec.AUTHENTICATION_METHOD)
    data = props.get(codec.AUTHENTICATION_DATA)
    return method, data, body[:pos] + codec.encode_varint(len(kept)) + kept + body[end:]


class SatGateway:
    """A K8S-SAT listener in front of Mosquitto, as Azure IoT Operations' broker is one.

    Over TLS it takes a CONNECT only with Authentication Method ``K8S-SAT`` and a token
    of ``tokens`` (else CONNACK 0x8C or 0x87), hands the connection to Mosquitto without
    the authentication properties, and answers re-authentications (AUTH 0x19) itself:
    Success for a known token, DISCONNECT 0x87 for another.
    """

    def __init__(self, upstream: int, tokens: set[bytes]) -> None:
        self.upstream = upstream
        self.tokens = tokens
        self.port = 0
        self.connects: list[object] = []
        self.reauthentications: list[object] = []
        self._streams: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._streams.append(writer)
        framer = codec.PacketReader(1 << 24)
        pending: list[codec.Packet] = []
        while not pending:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            pending.extend(framer.feed(data))
        method, token, rewritten = _strip_auth(pending.pop(0).body)
        self.connects.append(token)
        if method != "K8S-SAT" or token not in self.tokens:
            writer.write(connack(0x8C if method != "K8S-SAT" else 0x87))
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self._streams.append(up_writer)
        up_writer.write(packet(0x10, rewritten) + b"".join(_raw(p) for p in pending))

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        async def upstream() -> None:
            while data := await reader.read(65536):
                for framed in framer.feed(data):
                    if framed.kind != codec.AUTH:
                        up_writer.write(_raw(framed))
                        continue
                    reason, props = codec.decode_auth(framed.body)
                    token = props.get(codec.AUTHENTICATION_DATA)
                    self.reauthentications.append(token)
                    if reason == 0x19 and token in self.tokens:
                        writer.write(packet(0xF0, b"\x00" + section(
                            bytes((codec.AUTHENTICATION_METHOD,)) + utf8("K8S-SAT")
                        )))  # fmt: skip
                    else:
                        writer.write(packet(0xE0, b"\x87" + section()))
                        return
                await up_writer.drain()

        tasks = [asyncio.ensure_future(downstream()), asyncio.ensure_future(upstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except ConnectionError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for stream in (writer, up_writer):
                stream.close()

    def close(self) -> None:
        for stream in self._streams:
            stream.close()


@contextlib.asynccontextmanager
async def sat_gateway(
    upstream: int, tokens: set[bytes], certs: Certificates
) -> AsyncIterator[SatGateway]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    gateway = SatGateway(upstream, tokens)
    server = await asyncio.start_server(gateway.serve, "127.0.0.1", 0, ssl=context)
    gateway.port = server.sockets[0].getsockname()[1]
    try:
        yield gateway
    finally:
        server.close()
        gateway.close()


def documented_k8s_sat(gateway: SatGateway, certs: Certificates, sat_file: Path) -> AppConfig:
    return documented(
        "mqtt-k8s-sat",
        APP_MQTT_HOSTNAME="127.0.0.1",
        APP_MQTT_PORT=str(gateway.port),
        APP_MQTT_TLS_CA_FILE=str(certs.ca),
        APP_MQTT_SAT_FILE=str(sat_file),
    )


async def test_k8s_sat_deployment_of_the_operations_guide_serves_a_store(
    mosquitto: LocalMosquitto, redis_server: object, certificates: Certificates, tmp_path: Path
) -> None:
    """docs/operations.md's K8S-SAT block, with only addresses and paths replaced, against
    a broker that accepts nothing but K8S-SAT: the runtime connects (session and the
    publisher's probes), and a Store from the MES is served."""
    sat_file = tmp_path / "mq-sat"
    write_token(sat_file, "pod-token")
    async with sat_gateway(mosquitto.port, {b"pod-token"}, certificates) as gateway:
        loaded = documented_k8s_sat(gateway, certificates, sat_file)
        assert loaded.mqtt.auth_method == "K8S-SAT" and loaded.mqtt.tls
        base = make_config(gateway.port, redis_server)  # type: ignore[arg-type]
        mqtt = replace(
            loaded.mqtt,
            username=base.mqtt.username,
            password=base.mqtt.password,
            shared_subscription=base.mqtt.shared_subscription,
            response_topic_base=base.mqtt.response_topic_base,
            session_expiry=base.mqtt.session_expiry,
        )
        config = replace(base, mqtt=mqtt)
        async with running(config), MesClient(mosquitto.port) as mes:
            assert await store_job(mes, f"{config.jobs_prefix}/{SCOPE}/commands") == 1
        assert gateway.connects and set(gateway.connects) == {b"pod-token"}


async def test_k8s_sat_rotation_keeps_the_connection_through_a_real_broker(
    mosquitto: LocalMosquitto, certificates: Certificates, tmp_path: Path
) -> None:
    """Rotated while connected: AUTH 0x19 with the new token, accepted, and the same
    connection goes on carrying messages through Mosquitto."""
    sat_file = tmp_path / "mq-sat"
    write_token(sat_file, "token-a")
    async with sat_gateway(mosquitto.port, {b"token-a", b"token-b"}, certificates) as gateway:
        mqtt = documented_k8s_sat(gateway, certificates, sat_file).mqtt
        username, password = brokers.login()  # what the broker behind the gateway wants
        options = replace(
            client_options(mqtt, f"sat-{uuid.uuid4().hex[:8]}"),
            authenticator=K8sSatAuthenticator(str(sat_file), poll_seconds=0.05),
            username=username,
            password=password,
        )
        received: list[codec.Publish] = []
        client = MqttClient(options, received.append)
        await client.connect()
        topic = f"sat/{uuid.uuid4().hex}"
        assert await client.subscribe([(topic, 1)]) == [1]
        write_token(sat_file, "token-b")
        await wait_for(lambda: client.reauthentications == 1)
        client.publish(topic, b"after rotation", b"\x00", qos=0)
        await wait_for(lambda: len(received) == 1)
        assert received[0].payload == b"after rotation"
        assert gateway.reauthentications == [b"token-b"] and len(gateway.connects) == 1
        await client.disconnect(end_session=True)


async def test_k8s_sat_unknown_token_is_refused_not_authorized(
    certificates: Certificates, mosquitto: LocalMosquitto, tmp_path: Path
) -> None:
    sat_file = tmp_path / "mq-sat"
    write_token(sat_file, "stolen")
    async with sat_gateway(mosquitto.port, {b"pod-token"}, certificates) as gateway:
        mqtt = documented_k8s_sat(gateway, certificates, sat_file).mqtt
        client = MqttClient(client_options(mqtt, "intruder"), lambda message: None)
        with pytest.raises(MqttConnectionError, match="not authorized"):
            await client.connect()


async def test_challenge_during_reauthentication_is_answered_section_4_12_1(
    token_file: Path,
) -> None:
    """The broker may continue a re-authentication with AUTH 0x18 before its Success."""
    async with scripted_broker() as broker:
        sat = K8sSatAuthenticator(str(token_file), poll_seconds=0.05)
        client = make_client(broker, authenticator=sat)
        conversation, _ = await connect(broker, client, connack())
        write_token(token_file, "token-two")
        reason, _ = auth_of(await conversation.expect(codec.AUTH, timeout=2))
        assert reason == 0x19
        await conversation.send(auth_packet(0x18, "K8S-SAT", b"again?"))
        reason, props = auth_of(await conversation.expect(codec.AUTH))
        assert reason == 0x18 and props[codec.AUTHENTICATION_DATA] == b"token-two"
        await conversation.send(auth_packet(0x00, "K8S-SAT"))
        await wait_for(lambda: client.reauthentications == 1)


async def test_reauthenticate_from_the_broker_is_a_protocol_error_section_3_15_2_1(
    token_file: Path,
) -> None:
    """Only the client starts a re-authentication: AUTH 0x19 from the broker is answered
    with DISCONNECT 0x82."""
    async with scripted_broker() as broker:
        client = make_client(broker, authenticator=K8sSatAuthenticator(str(token_file)))
        conversation, _ = await connect(broker, client, connack())
        await conversation.send(auth_packet(0x19, "K8S-SAT", b"x"))
        refusal = await conversation.expect(codec.DISCONNECT)
        assert refusal.body[:1] == b"\x82"
