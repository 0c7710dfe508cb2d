"""Who may talk to the RPC server: TLS contexts and the name of the token method.

With a token configured (``APP_RPC_TOKEN`` or ``APP_RPC_TOKENS_FILE``), a connection is
unauthenticated until it called ``authenticate(token)``; until then every other request
gets an ``unauthenticated`` error and no events are pushed to it. A wrong token closes
the connection, and the peer address is refused for a growing back-off
(:mod:`.limits`), so tokens cannot be guessed quickly over many connections. Which
token maps to which scopes is in :mod:`.tokens`.
"""

from __future__ import annotations

import ssl

from microdcs.transports.msgpack_rpc.options import RpcConfig

AUTHENTICATE = "authenticate"


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
