"""Who a sidecar is and which scopes it may act on: per-sidecar tokens and their grants.

A grant's scopes are CloudEvent subjects taken as prefixes at level boundaries:
``plant1.line2`` covers ``plant1.line2`` and ``plant1.line2.cell3`` but not
``plant1.line20``; ``*`` covers every subject, the root scope (no subject) included.
A scoped sidecar may publish, and is pushed, only events whose subject it covers, so
one compromised sidecar cannot act on (or watch) another line.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from microdcs.core.errors import ConfigurationError

ALL_SCOPES = "*"
TOKENS_FILE_ENV = "APP_RPC_TOKENS_FILE"


@dataclass(frozen=True, slots=True)
class SidecarGrant:
    """A sidecar's name (for logs) and the subjects it may publish and receive."""

    name: str
    scopes: tuple[str, ...]

    @property
    def all_scopes(self) -> bool:
        return ALL_SCOPES in self.scopes

    def covers(self, subject: str | None) -> bool:
        """True if an event with ``subject`` lies within one of the grant's scopes."""
        if self.all_scopes:
            return True
        if not subject:
            return False
        return any(subject == scope or subject.startswith(scope + ".") for scope in self.scopes)


#: The grant of a connection when no token is configured, and of ``APP_RPC_TOKEN``.
UNRESTRICTED = SidecarGrant("default", (ALL_SCOPES,))


class TokenCheck:
    """Maps a presented token to its sidecar's grant, comparing in constant time.

    Every configured token is compared (no early exit), so the time taken does not tell
    which one a guess came close to.
    """

    def __init__(self, tokens: Mapping[str, SidecarGrant]) -> None:
        self._tokens = [(token.encode(), grant) for token, grant in tokens.items()]

    @classmethod
    def from_config(cls, shared_token: str | None, tokens_file: str | None) -> TokenCheck:
        """The shared token (all scopes) plus the sidecars of the tokens file, if any."""
        tokens = load_tokens_file(tokens_file) if tokens_file else {}
        if shared_token:
            if shared_token in tokens:
                raise ConfigurationError(
                    TOKENS_FILE_ENV, f"{tokens[shared_token].name!r} reuses APP_RPC_TOKEN"
                )
            tokens[shared_token] = UNRESTRICTED
        return cls(tokens)

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def grant_for(self, params: list[Any]) -> SidecarGrant | None:
        """The grant of ``[token]``; ``None`` for a wrong token or wrong params."""
        if not self._tokens:
            return UNRESTRICTED
        if len(params) != 1 or not isinstance(params[0], str | bytes):
            return None
        presented = params[0].encode() if isinstance(params[0], str) else params[0]
        found: SidecarGrant | None = None
        for token, grant in self._tokens:
            if hmac.compare_digest(presented, token):
                found = grant
        return found


def load_tokens_file(path: str) -> dict[str, SidecarGrant]:
    """Read ``{name: {"token": str, "scopes": [str, ...]}}``; token -> grant.

    Raises :class:`ConfigurationError` naming the sidecar for anything malformed, so a
    typo stops the start-up instead of silently locking a sidecar out (or in).
    """
    try:
        with open(path, encoding="utf-8") as file:
            raw = json.load(file)
    except OSError as exc:
        raise ConfigurationError(TOKENS_FILE_ENV, f"cannot read {path}: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(TOKENS_FILE_ENV, f"{path} is not valid JSON: {exc}") from None
    return parse_tokens(raw)


def parse_tokens(raw: Any) -> dict[str, SidecarGrant]:
    """Check the decoded tokens file; see :func:`load_tokens_file`."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigurationError(TOKENS_FILE_ENV, "must be a non-empty map of sidecar names")
    tokens: dict[str, SidecarGrant] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - {"token", "scopes"}:
            raise ConfigurationError(TOKENS_FILE_ENV, f"{name!r}: must be {{token, scopes}}")
        token = entry.get("token")
        if not isinstance(token, str) or len(token) < 8:
            raise ConfigurationError(
                TOKENS_FILE_ENV, f"{name!r}: token must be a string of at least 8 characters"
            )
        if token in tokens:
            raise ConfigurationError(
                TOKENS_FILE_ENV, f"{name!r} and {tokens[token].name!r} share a token"
            )
        tokens[token] = SidecarGrant(name, _scopes(name, entry.get("scopes")))
    return tokens


def _scopes(name: str, scopes: Any) -> tuple[str, ...]:
    if not isinstance(scopes, list) or not scopes:
        raise ConfigurationError(TOKENS_FILE_ENV, f"{name!r}: scopes must be a non-empty list")
    for scope in scopes:
        if not isinstance(scope, str) or not _valid_scope(scope):
            raise ConfigurationError(
                TOKENS_FILE_ENV,
                f"{name!r}: scope {scope!r} is not '*' or a subject such as 'plant1.line2'",
            )
    return tuple(scopes)


def _valid_scope(scope: str) -> bool:
    if scope == ALL_SCOPES:
        return True
    levels: Iterable[str] = scope.split(".")
    return all(level and not any(c in level for c in "/+#*") for level in levels)
