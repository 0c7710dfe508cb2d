"""MessagePack-RPC over TLS with a self-signed certificate made by ``openssl`` in the test."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from microdcs.transports.msgpack_rpc import MessagePackRpcClient, RpcConnectionError
from microdcs.transports.msgpack_rpc.auth import client_ssl_context
from tests.integration.test_msgpack_rpc_helpers import (
    RawClient,
    greeting_event,
    raw_client,
    rpc_config,
    serving,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def self_signed(directory: Path, name: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1/localhost and its key; it is its own CA."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    directory = tmp_path_factory.mktemp("rpc-tls")
    return {name: self_signed(directory, name) for name in ("server", "client", "stranger")}


async def test_client_talks_to_the_server_over_tls(certs: dict[str, tuple[str, str]]) -> None:
    cert, key = certs["server"]
    config = rpc_config(tls_cert_file=cert, tls_key_file=key)
    async with (
        serving(config) as server,
        MessagePackRpcClient(
            "127.0.0.1", server.port, ssl=client_ssl_context(ca_file=cert)
        ) as client,
    ):
        [response] = await client.publish(greeting_event("Tls"))
    assert response["data"]["greeting"] == "Hello, Tls!"


async def test_raw_tls_client_interoperates(certs: dict[str, tuple[str, str]]) -> None:
    cert, key = certs["server"]
    context = ssl.create_default_context(cafile=cert)
    async with (
        serving(rpc_config(tls_cert_file=cert, tls_key_file=key)) as server,
        raw_client(server.port, ssl=context, server_hostname="localhost") as client,
    ):
        assert await client.call(1, "heartbeat", 7) == [1, 1, None, 7]


async def test_plain_tcp_client_is_not_served_by_a_tls_server(
    certs: dict[str, tuple[str, str]],
) -> None:
    cert, key = certs["server"]
    config = rpc_config(tls_cert_file=cert, tls_key_file=key)
    async with serving(config, tls_handshake_timeout=0.5) as server:
        async with raw_client(server.port) as client:
            await client.send([0, 1, "heartbeat", ["x" * 100]])
            received = await client.reader.read()  # whatever TLS says, until it hangs up
            assert b"\x94\x01\x01" not in received
        context = client_ssl_context(ca_file=cert)
        async with MessagePackRpcClient("127.0.0.1", server.port, ssl=context) as client:
            assert await client.call("heartbeat", 2) == 2


async def test_required_client_certificate_is_verified(
    certs: dict[str, tuple[str, str]],
) -> None:
    cert, key = certs["server"]
    client_cert, client_key = certs["client"]
    config = rpc_config(tls_cert_file=cert, tls_key_file=key, tls_client_ca_file=client_cert)
    async with serving(config) as server:
        with_cert = client_ssl_context(ca_file=cert, cert_file=client_cert, key_file=client_key)
        async with MessagePackRpcClient("127.0.0.1", server.port, ssl=with_cert) as client:
            assert await client.call("heartbeat", 1) == 1
        for name in ("stranger", None):
            pair = certs[name] if name else (None, None)
            context = client_ssl_context(ca_file=cert, cert_file=pair[0], key_file=pair[1])
            with pytest.raises(RpcConnectionError):
                async with MessagePackRpcClient(
                    "127.0.0.1", server.port, ssl=context, reconnect=False, connect_timeout=2
                ) as client:
                    await client.call("heartbeat", 1, timeout=2)
        async with MessagePackRpcClient("127.0.0.1", server.port, ssl=with_cert) as client:
            assert await client.call("heartbeat", 3) == 3


async def test_without_client_ca_no_client_certificate_is_needed(
    certs: dict[str, tuple[str, str]],
) -> None:
    cert, key = certs["server"]
    async with (
        serving(rpc_config(tls_cert_file=cert, tls_key_file=key)) as server,
        MessagePackRpcClient(
            "127.0.0.1", server.port, ssl=client_ssl_context(ca_file=cert)
        ) as client,
    ):
        assert await client.call("heartbeat", 4) == 4


async def test_sockets_stuck_before_the_tls_handshake_count_against_the_limit(
    certs: dict[str, tuple[str, str]],
) -> None:
    """Plain TCP sockets that never send a ClientHello must not pile up past the limit."""
    cert, key = certs["server"]
    config = rpc_config(tls_cert_file=cert, tls_key_file=key, max_connections=5)
    async with serving(config, tls_handshake_timeout=30.0) as server:
        stuck = [await RawClient.connect(server.port) for _ in range(20)]
        try:
            closed = await asyncio.gather(*(client.closed(1.0) for client in stuck))
            assert closed.count(True) == 15
            assert server.connection_stats.refused_connections == 15
        finally:
            for client in stuck:
                await client.close()
        context = client_ssl_context(ca_file=cert)
        async with MessagePackRpcClient("127.0.0.1", server.port, ssl=context) as rpc:
            [response] = await rpc.publish(greeting_event("Tls"))
        assert response["data"]["greeting"] == "Hello, Tls!"
