"""Who is looking at a page, and what they may do: the contract between the web server's
authentication (sessions, bearer tokens, CSRF) and the pages that show or hide actions.

Pages never read cookies or headers themselves: the authentication middleware puts a
:class:`User` (or none) on the request, and a page asks :func:`current_user` and
:func:`require` before it renders an action or carries one out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["AccessDenied", "Role", "User"]


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    #: Sees pages, acts on nothing.
    VIEWER = 1
    #: Acknowledges, shelves, unshelves and resets alarms.
    OPERATOR = 2
    #: Also suppresses alarms and takes them out of service.
    ENGINEER = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"operator"`` -> :attr:`OPERATOR`; a ValueError names the allowed roles."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            allowed = ", ".join(role.name.lower() for role in cls)
            raise ValueError(f"unknown role {text!r} (one of: {allowed})") from None


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated person; ``name`` is what journals record as the operator id."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """True when this user holds ``role`` or a higher one."""
        return self.role >= role


class AccessDenied(Exception):
    """Raised by a page for a request whose user lacks the role (401 without a user,
    403 with one); the server turns it into the response."""

    def __init__(self, needed: Role, user: User | None) -> None:
        super().__init__(f"{needed.name.lower()} role needed")
        self.needed = needed
        self.user = user

    @property
    def status(self) -> int:
        """401 when nobody is logged in, 403 when the user's role is too low."""
        return 401 if self.user is None else 403
