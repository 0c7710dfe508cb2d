"""Enhanced authentication (MQTT v5 sections 3.15 and 4.12): pluggable methods.

The client knows the AUTH packet exchange; an :class:`Authenticator` knows one method's
credentials. The first is ``K8S-SAT``, the method of Azure IoT Operations' MQTT broker,
whose default listener accepts nothing else: the Authentication Data is the pod's
Kubernetes service-account token, projected into a file that the kubelet rotates before
the token expires. The file is read for every connection, and a rotation seen while
connected makes the client re-authenticate (AUTH reason 0x19) before the broker drops it.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

from microdcs.core.errors import MicroDCSError

logger = logging.getLogger(__name__)

K8S_SAT: Final = "K8S-SAT"
#: Where Azure IoT Operations' examples project the broker audience's token.
DEFAULT_SAT_FILE: Final = "/var/run/secrets/tokens/mq-sat"
#: Methods ``APP_MQTT_AUTH_METHOD`` may name (empty: no enhanced authentication).
METHODS: Final = ("", K8S_SAT)


class AuthenticationError(MicroDCSError):
    """Our credentials cannot be produced (e.g. the token file is missing or empty)."""


class Authenticator(Protocol):
    """One authentication method's side of the exchange; the client does the packets."""

    @property
    def method(self) -> str:
        """The Authentication Method property, the same in CONNECT and every AUTH."""
        ...

    @property
    def poll_seconds(self) -> float:
        """How often :meth:`renewed` is asked while connected (0: never)."""
        ...

    def initial_data(self) -> bytes | None:
        """Authentication Data of the CONNECT, read fresh for each connection.

        Raises :class:`AuthenticationError` when there are no credentials to offer.
        """
        ...

    def respond(self, challenge: bytes | None) -> bytes | None:
        """Data of our AUTH 0x18 answering the broker's AUTH 0x18 ``challenge``."""
        ...

    def renewed(self, current: bytes | None) -> bytes | None:
        """New Authentication Data if it differs from ``current`` (what the connection
        authenticated with), else ``None``; the client then re-authenticates (AUTH 0x19).

        Stateless about connections: one authenticator may serve several clients (the
        replica's session and its retained-state probes).
        """
        ...


class K8sSatAuthenticator:
    """``K8S-SAT``: the Kubernetes service-account token in ``path`` is the credential.

    The broker validates the token and answers with CONNACK; there is no challenge. A
    rotation is noticed by the file's content (a token of about a kilobyte, read every
    ``poll_seconds``), so a file replaced by the same token re-authenticates nobody.
    """

    __slots__ = ("_path", "_poll")

    def __init__(self, path: str = DEFAULT_SAT_FILE, *, poll_seconds: float = 10.0) -> None:
        self._path = path
        self._poll = poll_seconds

    @property
    def method(self) -> str:
        return K8S_SAT

    @property
    def poll_seconds(self) -> float:
        return self._poll

    def _read(self) -> bytes:
        try:
            with open(self._path, "rb") as file:
                token = file.read().strip()
        except OSError as exc:
            raise AuthenticationError(
                f"cannot read the service-account token {self._path}: {exc.strerror}"
            ) from None
        if not token:
            raise AuthenticationError(f"the service-account token file {self._path} is empty")
        return token

    def initial_data(self) -> bytes:
        return self._read()

    def respond(self, challenge: bytes | None) -> bytes:
        # K8S-SAT has no challenge; a broker that asks anyway gets the token again.
        return self._read()

    def renewed(self, current: bytes | None) -> bytes | None:
        try:
            token = self._read()
        except AuthenticationError as exc:
            # Mid-rotation the file may be absent for a moment: ask again next time.
            logger.debug("token file not readable now: %s", exc)
            return None
        return token if token != current else None


def authenticator(method: str, sat_file: str) -> Authenticator | None:
    """The authenticator ``APP_MQTT_AUTH_METHOD`` names (``None`` for an empty method)."""
    if not method:
        return None
    if method == K8S_SAT:
        return K8sSatAuthenticator(sat_file)
    raise ValueError(f"unknown MQTT authentication method {method!r}")
