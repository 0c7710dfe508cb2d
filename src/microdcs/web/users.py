"""The web view's users: names, roles and password hashes from ``APP_WEB_USERS_FILE``.

Read once at start-up (a bad file stops the start, naming each bad entry). Failed logins
are throttled per user name: after a few failures each further attempt waits for a
growing back-off, so guessing a password over the network is slow; the back-off is per
replica and in memory (a restart forgives).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from microdcs.core.errors import ConfigurationError
from microdcs.core.startupfile import read_json_file
from microdcs.web.identity import Role, User
from microdcs.web.passwords import hash_password, verify_password

__all__ = ["LoginRefused", "UserDirectory", "read_users_file"]

VARIABLE = "APP_WEB_USERS_FILE"
#: Failures allowed before the back-off starts, its first step and its cap (seconds).
FREE_FAILURES, FIRST_BACKOFF, MAX_BACKOFF = 3, 1.0, 300.0
#: Names kept in the failure table at most (a scan of random names stays bounded).
MAX_TRACKED = 10_000


@dataclass(frozen=True, slots=True)
class _Account:
    user: User
    password_hash: str


class LoginRefused(Exception):
    """A login that did not succeed; ``retry_after`` is set while the name is throttled."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("login refused")
        self.retry_after = retry_after


def read_users_file(path: str) -> dict[str, tuple[User, str]]:
    """name -> (user, password hash); a :class:`ConfigurationError` names each problem."""
    data = read_json_file(path, VARIABLE)
    if not isinstance(data, list):
        raise ConfigurationError(VARIABLE, f"{path}: a list of users")
    users: dict[str, tuple[User, str]] = {}
    problems: list[str] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            problems.append(f"[{index}]: a user is an object")
            continue
        name, role, hashed = entry.get("name"), entry.get("role"), entry.get("password_hash")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"[{index}]: 'name' must be a non-empty string")
            continue
        if not isinstance(hashed, str) or not hashed.startswith("scrypt$"):
            problems.append(f"[{index}] {name!r}: 'password_hash' from microdcs hash-password")
            continue
        try:
            parsed = Role.parse(str(role))
        except ValueError as exc:
            problems.append(f"[{index}] {name!r}: {exc}")
            continue
        if name in users:
            problems.append(f"[{index}]: user {name!r} is listed twice")
        users[name] = (User(name, parsed), hashed)
    if problems:
        raise ConfigurationError(VARIABLE, f"{path}: " + "; ".join(problems))
    return users


class UserDirectory:
    """Who may log in, and the throttle on failed attempts."""

    def __init__(
        self,
        users: Mapping[str, tuple[User, str]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = {name: _Account(user, h) for name, (user, h) in users.items()}
        self._clock = clock
        #: name -> (failures in a row, not before)
        self._failures: dict[str, tuple[int, float]] = {}
        self.failed_logins = 0
        self.throttled_logins = 0
        #: Checked for unknown names too, so the answer's timing does not tell them apart.
        self._decoy = hash_password(secrets.token_hex(16))

    def user(self, name: str) -> User | None:
        """The user of a session's name now (a role change applies at once)."""
        account = self._accounts.get(name)
        return account.user if account is not None else None

    def authenticate(self, name: str, password: str) -> User:
        """The user, or :class:`LoginRefused` (the same for an unknown name)."""
        now = self._clock()
        failures, not_before = self._failures.get(name, (0, 0.0))
        if now < not_before:
            self.throttled_logins += 1
            raise LoginRefused(retry_after=not_before - now)
        account = self._accounts.get(name)
        hashed = account.password_hash if account is not None else self._decoy
        if verify_password(password, hashed) and account is not None:
            self._failures.pop(name, None)
            return account.user
        self.failed_logins += 1
        failures += 1
        backoff = 0.0
        if failures > FREE_FAILURES:
            backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - FREE_FAILURES - 1))
        if len(self._failures) >= MAX_TRACKED and name not in self._failures:
            self._failures.pop(next(iter(self._failures)))
        self._failures[name] = (failures, now + backoff)
        raise LoginRefused(retry_after=backoff or None)
