"""Finding the Redis primary through Redis Sentinel.

Sentinel monitors a primary and its replicas and promotes a replica when the primary
fails. Clients ask any sentinel for the primary's address (``SENTINEL
get-master-addr-by-name``) instead of configuring it. The pipelined connection asks again
before every (re)connect, so after a failover the next connection goes to the new primary;
a connection that meets ``READONLY`` (its server was demoted) is dropped by the connection
itself, which leads here again.
"""

from __future__ import annotations

import logging
import ssl

from redis.exceptions import ResponseError

from microdcs.core.errors import StorageUnavailableError
from microdcs.storage.resp import RespConnection

logger = logging.getLogger(__name__)


class SentinelLocator:
    """``await locator()`` is the current primary's ``(host, port)``.

    Sentinels are asked in order; the one that answered is asked first next time. A
    sentinel that does not know the primary (wrong name) or cannot be reached is skipped;
    when none answers, the connection attempt fails as storage unavailable and is retried
    like any other outage.
    """

    def __init__(
        self,
        sentinels: list[tuple[str, int]],
        master: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 2.0,
    ) -> None:
        self._sentinels = list(sentinels)
        self._master = master
        self._username = username
        self._password = password
        self._ssl = ssl_context
        self._timeout = timeout
        #: The last address handed out, to log a failover once when it changes.
        self.current: tuple[str, int] | None = None

    async def __call__(self) -> tuple[str, int]:
        problems: list[str] = []
        for index, (host, port) in enumerate(self._sentinels):
            try:
                address = await self._ask(host, port)
            except (StorageUnavailableError, ResponseError) as exc:
                problems.append(f"{host}:{port}: {exc}")
                continue
            if address is None:
                problems.append(f"{host}:{port} does not know {self._master!r}")
                continue
            if index:  # remember the sentinel that answered
                self._sentinels.insert(0, self._sentinels.pop(index))
            if address != self.current:
                logger.info("Sentinel names %s:%d as the primary of %r", *address, self._master)
                self.current = address
            return address
        raise StorageUnavailableError(
            f"no sentinel named the primary {self._master!r}: " + "; ".join(problems)
        )

    async def _ask(self, host: str, port: int) -> tuple[str, int] | None:
        connection = RespConnection(
            host,
            port,
            username=self._username,
            password=self._password,
            ssl_context=self._ssl,
            connect_timeout=self._timeout,
            command_timeout=self._timeout,
        )
        try:
            reply = await connection.execute("SENTINEL", "get-master-addr-by-name", self._master)
        finally:
            connection.close()
        if not reply:
            return None
        primary_host, primary_port = reply
        return primary_host.decode(), int(primary_port)
