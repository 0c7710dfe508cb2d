"""Who may talk to the RPC server: TLS contexts and the shared-token check.

With ``APP_RPC_TOKEN`` set, a connection is unauthenticated until it called
``authenticate(token)``; until then every other request gets an ``unauthenticated``
error and no events are pushed to it. A wrong token closes the connection, so one
connection cannot be used to guess tokens.
"""

from __future__ import annotations

import hmac
import ssl
from typing import Any

from microdcs.config import RpcConfig

AUTHENTICATE = "authenticate"


class TokenCheck:
    """Compares presented tokens with the configured one in constant time."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def required(self) -> bool:
        return self._token is not None

    def accepts(self, params: list[Any]) -> bool:
        """True for ``[token]`` matching the configured token (or when none is set)."""
        if self._token is None:
            return True
        if len(params) != 1 or not isinstance(params[0], str | bytes):
            return False
        presented = params[0].encode() if isinstance(params[0], str) else params[0]
        return hmac.compare_digest(presented, self._token)


def server_ssl_context(config: RpcConfig) -> ssl.SSLContext | None:
    """The server's TLS context, or ``None`` when no certificate is configured.

    With ``tls_client_ca_file`` set, clients must present a certificate signed by it.
    """
    if not config.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_client_ca_file:
        context.load_verify_locations(cafile=config.tls_client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_ssl_context(
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client TLS context: trust ``ca_file`` (system CAs if unset), optional client cert."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.check_hostname = check_hostname
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context
