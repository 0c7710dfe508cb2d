"""Settings of the web view, declared next to the code that reads them (composed into
the app's configuration as ``web``)."""

from __future__ import annotations

from dataclasses import dataclass

from microdcs.core.settings import setting


@dataclass(frozen=True, slots=True)
class WebConfig:
    enabled: bool = setting(
        "APP_WEB_ENABLED",
        True,
        "Serve the operator pages (overview, jobs, recipe charts, alarms, tags) on the "
        "HTTP port beside /healthz, /readyz and /metrics.",
    )
    users_file: str | None = setting(
        "APP_WEB_USERS_FILE",
        None,
        'JSON list of the web view\'s users: ``[{"name": ..., "role": "viewer" | '
        '"operator" | "engineer", "password_hash": ...}]`` (hashes from ``microdcs '
        "hash-password``). Without it nobody can log in.",
    )
    anonymous_viewer: bool = setting(
        "APP_WEB_ANONYMOUS_VIEWER",
        False,
        "Let anyone who reaches the port see the pages without logging in (as a viewer: "
        "no actions). Off: every page asks for a login.",
    )
    session_secret: str | None = setting(
        "APP_WEB_SESSION_SECRET",
        None,
        "Key that signs the session cookies (at least 32 characters). Unset: a random "
        "key per start, so sessions end when the replica restarts, and replicas behind "
        "one load balancer must share a set value.",
    )
    session_hours: float = setting(
        "APP_WEB_SESSION_HOURS", 12.0, "How long a login lasts (one shift by default)."
    )
    secure_cookies: bool = setting(
        "APP_WEB_SECURE_COOKIES",
        False,
        "Mark the session cookie Secure (sent over HTTPS only). Turn on when the pages are "
        "served through a TLS-terminating proxy, which is how a plant should expose them.",
    )
