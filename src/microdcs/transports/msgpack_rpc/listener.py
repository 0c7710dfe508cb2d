"""Listening sockets and an accept loop the server controls from the first byte.

``asyncio.start_server`` hands a connection over only after its TLS handshake, so
sockets that never finish one cannot be counted against a connection limit and pile
up for the handshake timeout each. Accepting ourselves lets the server count (and
refuse) every socket from the moment it exists, and run the handshake in a task it
owns. Running out of file descriptors pauses accepting briefly instead of failing.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from microdcs.transports.msgpack_rpc.limits import BurstLog

logger = logging.getLogger(__name__)

#: Errors of ``accept`` that mean "out of resources for now": wait, then go on.
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
EXHAUSTED_PAUSE = 0.1


async def bind(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Non-blocking listening sockets for every address ``host`` resolves to."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    return listeners


async def accept_forever(
    listener: socket.socket, on_socket: Callable[[socket.socket], None]
) -> None:
    """Hand every accepted socket to ``on_socket``, which now owns it."""
    loop = asyncio.get_running_loop()
    exhausted = BurstLog(logger)
    while True:
        try:
            conn, _ = await loop.sock_accept(listener)
        except OSError as exc:
            if exc.errno in _EXHAUSTED:
                exhausted.warning("accepting RPC connections failed: %s; pausing", exc)
                await asyncio.sleep(EXHAUSTED_PAUSE)
                continue
            if exc.errno == errno.ECONNABORTED:
                continue
            raise
        on_socket(conn)
