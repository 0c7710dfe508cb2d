"""Password hashes, session cookies and the users file of the web view (pure, no I/O)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from microdcs.core.errors import ConfigurationError
from microdcs.web.identity import Role, User
from microdcs.web.passwords import hash_password, verify_password
from microdcs.web.sessions import SessionSigner
from microdcs.web.users import LoginRefused, UserDirectory, read_users_file

KEY = b"k" * 32


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("s3cret")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret ", encoded)
    assert hash_password("s3cret") != encoded  # a new salt each time


@pytest.mark.parametrize(
    "encoded", ["", "scrypt$", "md5$1$1$1$AA==$AA==", "scrypt$99999999$8$1$AA==$AA==", "x" * 500]
)
def test_a_malformed_hash_verifies_nothing(encoded: str) -> None:
    assert not verify_password("anything", encoded)


def test_a_session_cookie_says_who_until_when_with_its_csrf_token() -> None:
    signer = SessionSigner(KEY, 3600, clock=lambda: 1000.0)
    value, session = signer.issue("jdoe")
    checked = signer.check(value)
    assert checked == session and checked.name == "jdoe" and checked.expires == 4600.0
    assert len(checked.csrf) >= 24


def test_a_tampered_foreign_or_expired_cookie_is_nobody() -> None:
    now = [1000.0]
    signer = SessionSigner(KEY, 60, clock=lambda: now[0])
    value, _ = signer.issue("jdoe")
    payload, _, signature = value.partition(".")
    forged = SessionSigner(b"x" * 32, 60, clock=lambda: now[0]).issue("admin")[0]
    assert (
        signer.check(payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature) is None
    )
    assert signer.check(forged) is None
    assert signer.check("garbage") is None and signer.check("é.é") is None
    now[0] += 61
    assert signer.check(value) is None


def test_a_short_session_key_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionSigner(b"short", 60)


def users_file(tmp_path: Path, entries: object) -> str:
    path = tmp_path / "users.json"
    path.write_bytes(orjson.dumps(entries))
    return str(path)


def test_the_users_file_gives_names_roles_and_hashes(tmp_path: Path) -> None:
    hashed = hash_password("pw")
    users = read_users_file(
        users_file(tmp_path, [{"name": "op", "role": "operator", "password_hash": hashed}])
    )
    user, stored = users["op"]
    assert user.role is Role.OPERATOR and stored == hashed


def test_a_bad_users_file_names_each_bad_entry(tmp_path: Path) -> None:
    path = users_file(
        tmp_path,
        [
            {"name": "a", "role": "admin", "password_hash": "scrypt$1"},
            {"name": "", "role": "viewer", "password_hash": "scrypt$1"},
            {"name": "b", "role": "viewer", "password_hash": "plain"},
        ],
    )
    with pytest.raises(ConfigurationError) as raised:
        read_users_file(path)
    text = str(raised.value)
    assert "APP_WEB_USERS_FILE" in text and "[0]" in text and "[1]" in text and "[2]" in text
    assert "unknown role 'admin'" in text


def test_failed_logins_back_off_per_name_and_a_success_resets() -> None:
    now = [0.0]
    hashed = hash_password("right")
    directory = UserDirectory({"op": (User("op", Role.OPERATOR), hashed)}, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(LoginRefused) as refused:
            directory.authenticate("op", "wrong")
        assert refused.value.retry_after is None
    with pytest.raises(LoginRefused) as refused:
        directory.authenticate("op", "wrong")
    assert refused.value.retry_after == 1.0
    with pytest.raises(LoginRefused) as throttled:
        directory.authenticate("op", "right")  # even the right password waits
    assert throttled.value.retry_after is not None
    now[0] += 1.0
    assert directory.authenticate("op", "right").name == "op"
    with pytest.raises(LoginRefused) as fresh:
        directory.authenticate("op", "wrong")
    assert fresh.value.retry_after is None
    assert directory.failed_logins == 5 and directory.throttled_logins == 1


def test_an_unknown_name_is_refused_like_a_wrong_password() -> None:
    directory = UserDirectory({})
    with pytest.raises(LoginRefused):
        directory.authenticate("nobody", "pw")
    assert directory.user("nobody") is None
