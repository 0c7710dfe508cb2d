"""Password hashes for the web view's users: stdlib scrypt, verified in constant time.

A hash reads ``scrypt$<n>$<r>$<p>$<salt base64>$<key base64>``, so its cost travels with
it and can be raised later without invalidating older hashes. ``microdcs hash-password``
prints one for the users file; the runtime never sees or logs a password in clear but
for the moment of a login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

#: CPU/memory cost (2^14), block size and parallelism: about 16 MiB and 50 ms per check.
N, R, P = 2**14, 8, 1
KEY_BYTES = 32
_MAX_N = 2**20


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The encoded scrypt hash of ``password`` (a new random salt unless given)."""
    if not password:
        raise ValueError("a password must not be empty")
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=KEY_BYTES)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt" or not 1 < int(n) <= _MAX_N:
            return False
        expected = base64.b64decode(key, validate=True)
        derived = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, expected)
