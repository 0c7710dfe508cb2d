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
from microdcs.transports.mqtt import codec

logger = logging.getLogger(__name__)

K8S_SAT: Final = "K8S-SAT"
#: Where Azure IoT Operations' examples project the broker audience's token.
DEFAULT_SAT_FILE: Final = "/var/run/secrets/tokens/mq-sat"
#: Methods ``APP_MQTT_AUTH_METHOD`` may name (empty: no enhanced authentication).
METHODS: Final = ("", K8S_SAT)
#: AUTH reason codes (3.15.2.1).
SUCCESS: Final = 0x00
CONTINUE: Final = 0x18
REAUTHENTICATE: Final = 0x19


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


class AuthExchange:
    """The AUTH conversation of one client with the broker, connection after connection.

    Pure protocol state: the client writes the packets it returns and keeps the timer
    that asks :meth:`renewal`. Errors of the broker raise :class:`codec.ProtocolError`.
    """

    __slots__ = ("authenticator", "data", "reauthenticating", "reauthentications")

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        #: The Authentication Data the current connection authenticated with.
        self.data: bytes | None = None
        self.reauthenticating = False
        #: Re-authentications the broker accepted (AUTH 0x00 after our AUTH 0x19).
        self.reauthentications = 0

    @property
    def method(self) -> str:
        return self.authenticator.method

    def start(self) -> bytes | None:
        """The CONNECT's Authentication Data, read anew (raises AuthenticationError)."""
        self.reauthenticating = False
        self.data = self.authenticator.initial_data()
        return self.data

    def on_auth(self, body: bytes) -> bytes | None:
        """The broker's AUTH; our AUTH to send in answer, if any.

        Raises :class:`AuthenticationError` when a challenge cannot be answered.
        """
        reason, props = codec.decode_auth(body)
        method = props.get(codec.AUTHENTICATION_METHOD)
        # MQTT-4.12.0-5; a Success may come in the short form, without properties (3.15.2.1).
        if method != self.method and (method is not None or reason != SUCCESS):
            raise codec.ProtocolError("AUTH with another authentication method", 0x82)
        if reason == CONTINUE:
            data = props.get(codec.AUTHENTICATION_DATA)
            answer = self.authenticator.respond(data if isinstance(data, bytes) else None)
            return codec.encode_auth(CONTINUE, self.method, answer)
        if reason == SUCCESS and self.reauthenticating:
            self.reauthenticating = False
            self.reauthentications += 1
            logger.info("re-authenticated with renewed %s credentials", self.method)
            return None
        raise codec.ProtocolError(f"unexpected AUTH reason 0x{reason:02x}", 0x82)

    def renewal(self) -> bytes | None:
        """AUTH 0x19 with renewed credentials (section 4.12.1), or ``None``: none renewed."""
        if self.reauthenticating:
            return None  # the last one is still being answered
        data = self.authenticator.renewed(self.data)
        if data is None:
            return None
        self.data = data
        self.reauthenticating = True
        logger.info("%s credentials renewed; re-authenticating", self.method)
        return codec.encode_auth(REAUTHENTICATE, self.method, data)


def authenticator(method: str, sat_file: str) -> Authenticator | None:
    """The authenticator ``APP_MQTT_AUTH_METHOD`` names (``None`` for an empty method)."""
    if not method:
        return None
    if method == K8S_SAT:
        return K8sSatAuthenticator(sat_file)
    raise ValueError(f"unknown MQTT authentication method {method!r}")
