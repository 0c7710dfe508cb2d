"""Per-sidecar tokens, their scopes, the failed-token back-off and bounded logging."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from microdcs.app.config import load_config
from microdcs.core.errors import ConfigurationError
from microdcs.transports.msgpack_rpc.limits import AuthBackoff, BurstLog, peer_address
from microdcs.transports.msgpack_rpc.tokens import (
    UNRESTRICTED,
    SidecarGrant,
    TokenCheck,
    load_tokens_file,
    parse_tokens,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_shared_token_is_accepted_with_all_scopes() -> None:
    check = TokenCheck.from_config("s3cret", None)
    assert check.required
    assert check.grant_for(["s3cret"]) == UNRESTRICTED
    assert check.grant_for([b"s3cret"]) == UNRESTRICTED
    for wrong in (["s3cre"], [], [123], ["s3cret", "extra"]):
        assert check.grant_for(wrong) is None


def test_without_any_token_everyone_gets_all_scopes() -> None:
    check = TokenCheck.from_config(None, None)
    assert not check.required
    assert check.grant_for([]) == UNRESTRICTED


def test_tokens_file_maps_each_token_to_its_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "line2": {"token": "token-line2", "scopes": ["plant1.line2"]},
                "mes": {"token": "token-mes-1", "scopes": ["*"]},
            }
        )
    )
    check = TokenCheck.from_config("shared-token", str(path))
    assert check.grant_for(["token-line2"]) == SidecarGrant("line2", ("plant1.line2",))
    assert check.grant_for(["token-mes-1"]) == SidecarGrant("mes", ("*",))
    assert check.grant_for(["shared-token"]) == UNRESTRICTED
    assert check.grant_for(["token-line3"]) is None


def test_a_scope_covers_its_subject_and_the_levels_below_only() -> None:
    grant = SidecarGrant("line2", ("plant1.line2", "plant2"))
    assert grant.covers("plant1.line2")
    assert grant.covers("plant1.line2.cell3")
    assert grant.covers("plant2.line9")
    assert not grant.covers("plant1.line20")
    assert not grant.covers("plant1")
    assert not grant.covers(None)
    assert not grant.covers("")


def test_star_covers_every_subject_and_the_root_scope() -> None:
    grant = SidecarGrant("all", ("*",))
    assert grant.covers("anything.at.all")
    assert grant.covers(None)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {},
        {"a": "token-aaaa"},
        {"a": {"token": "short", "scopes": ["x"]}},
        {"a": {"token": "token-aaaa", "scopes": []}},
        {"a": {"token": "token-aaaa", "scopes": "x"}},
        {"a": {"token": "token-aaaa", "scopes": ["x/y"]}},
        {"a": {"token": "token-aaaa", "scopes": ["x..y"]}},
        {"a": {"token": "token-aaaa", "scopes": ["x.*"]}},
        {"a": {"token": "token-aaaa", "scopes": ["x"], "admin": True}},
        {
            "a": {"token": "token-aaaa", "scopes": ["x"]},
            "b": {"token": "token-aaaa", "scopes": ["y"]},
        },
    ],
)
def test_malformed_tokens_files_are_configuration_errors(raw: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_tokens(raw)
    assert caught.value.variable == "APP_RPC_TOKENS_FILE"


def test_an_unreadable_or_invalid_tokens_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="APP_RPC_TOKENS_FILE"):
        load_tokens_file(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_tokens_file(str(broken))


def test_shared_token_reused_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"a": {"token": "token-aaaa", "scopes": ["x"]}}))
    with pytest.raises(ConfigurationError, match="reuses APP_RPC_TOKEN"):
        TokenCheck.from_config("token-aaaa", str(path))


def test_backoff_doubles_per_failure_up_to_the_maximum() -> None:
    clock = Clock()
    backoff = AuthBackoff(initial=1.0, maximum=5.0, clock=clock)
    assert backoff.retry_in("10.0.0.1") == 0
    assert [backoff.failed("10.0.0.1") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.retry_in("10.0.0.1") == 5.0
    assert backoff.retry_in("10.0.0.2") == 0
    clock.now += 5.0
    assert backoff.retry_in("10.0.0.1") == 0


def test_backoff_is_forgotten_after_success_or_a_quiet_period() -> None:
    clock = Clock()
    backoff = AuthBackoff(initial=1.0, maximum=4.0, clock=clock)
    backoff.failed("a")
    backoff.failed("a")
    backoff.succeeded("a")
    assert backoff.failed("a") == 1.0
    clock.now += 1.0 + 4.0
    assert backoff.failed("a") == 1.0  # the old record expired: counting starts again


def test_backoff_remembers_a_bounded_number_of_addresses() -> None:
    backoff = AuthBackoff(initial=1.0, maximum=4.0, max_peers=100, clock=Clock())
    for n in range(10_000):
        backoff.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(backoff) == 100
    assert backoff.retry_in("10.0.39.15") > 0  # the most recent is kept


def test_burst_log_writes_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = BurstLog(logging.getLogger("test.burst"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.burst"):
        for _ in range(200):
            log.warning("refused %s", "x")
        clock.now += 10.0
        log.warning("refused %s", "x")
    assert [r.getMessage() for r in caplog.records] == [
        "refused x",
        "refused x (and 199 more like it since the last report)",
    ]


def test_peer_address_is_the_host_without_the_port() -> None:
    assert peer_address(("127.0.0.1", 50123)) == "127.0.0.1"
    assert peer_address(("::1", 50123, 0, 0)) == "::1"
    assert peer_address(None) == "None"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("APP_RPC_MAX_CONNECTIONS", "0"),
        ("APP_RPC_AUTH_TIMEOUT_SECONDS", "0"),
        ("APP_RPC_IDLE_TIMEOUT_SECONDS", "-1"),
        ("APP_RPC_AUTH_BACKOFF_SECONDS", "0"),
        ("APP_RPC_AUTH_BACKOFF_MAX_SECONDS", "0.5"),
    ],
)
def test_rpc_limits_out_of_range_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({variable: value})
    assert caught.value.variable == variable


def test_rpc_limit_defaults() -> None:
    rpc = load_config({}).rpc
    assert (rpc.max_connections, rpc.auth_timeout, rpc.idle_timeout) == (256, 5.0, 300.0)
    assert (rpc.auth_backoff, rpc.auth_backoff_max, rpc.tokens_file) == (1.0, 60.0, None)
