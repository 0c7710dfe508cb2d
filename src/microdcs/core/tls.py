"""The one way microdcs builds a client TLS context, for the broker and for Redis alike.

Both connections take the same four settings (on, CA file, client certificate and key,
insecure), and an operator reading ``*_TLS_INSECURE`` must get the same meaning for both:
the host name is not checked, the certificate chain still is.
"""

from __future__ import annotations

import ssl


def client_tls_context(
    enabled: bool,
    *,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    check_hostname: bool = True,
) -> ssl.SSLContext | None:
    """A verifying client context (``None`` when TLS is off): the server's certificate is
    checked against ``ca_file`` (the system store when ``None``); ``cert_file``/``key_file``
    present a client certificate; ``check_hostname=False`` skips only the name check."""
    if not enabled:
        return None
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    context.check_hostname = check_hostname
    return context
