"""Signed session cookies: who is logged in, until when, and the session's CSRF token.

The cookie holds ``<payload>.<signature>``: the payload is base64 of the user name, the
expiry and a random CSRF token; the signature is HMAC-SHA256 under the session key. The
role is not in it: the users file decides the role at every request, so a demotion or a
removed user takes effect at once. Nothing secret is in the cookie; it must only be
unforgeable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = ["COOKIE", "Session", "SessionSigner"]

COOKIE = "microdcs_session"


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    expires: float
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookies under one key."""

    def __init__(
        self, key: bytes, lifetime: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        if len(key) < 32:
            raise ValueError("a session key needs at least 32 bytes")
        self._key = key
        self.lifetime = lifetime
        self._clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, name: str) -> tuple[str, Session]:
        """A new session of ``name``: the cookie value and what it says."""
        session = Session(name, self._clock() + self.lifetime, secrets.token_urlsafe(24))
        payload = _b64(orjson.dumps([session.name, session.expires, session.csrf]))
        return f"{payload}.{self._sign(payload)}", session

    def check(self, value: str) -> Session | None:
        """The session of a cookie value; ``None`` if forged, malformed or expired."""
        payload, _, signature = value.partition(".")
        try:
            if not payload or not hmac.compare_digest(self._sign(payload), signature):
                return None
            name, expires, csrf = orjson.loads(_unb64(payload))
        except (ValueError, TypeError):  # not ASCII, not base64, not our JSON
            return None
        if not isinstance(name, str) or not isinstance(csrf, str):
            return None
        if not isinstance(expires, int | float) or expires <= self._clock():
            return None
        return Session(name, float(expires), csrf)
