"""The Redis deployment settings: modes, address lists and TLS checked when read."""

from __future__ import annotations

import ssl

import pytest

from microdcs.core.errors import ConfigurationError
from microdcs.storage.options import RedisConfig, parse_addresses, tls_context


def test_addresses_are_host_port_pairs_and_ipv6_brackets_are_removed() -> None:
    assert parse_addresses(" a:1, b.example:6380 ,[::1]:7000,", "X") == [
        ("a", 1),
        ("b.example", 6380),
        ("::1", 7000),
    ]


@pytest.mark.parametrize("text", ["nohost", "a:", ":1", "a:b", "a:0", "a:65536"])
def test_a_bad_address_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigurationError, match="APP_REDIS_NODES"):
        RedisConfig(mode="cluster", nodes=text)


def test_cluster_seed_nodes_default_to_hostname_and_port() -> None:
    assert RedisConfig(mode="cluster", hostname="r", port=7001).seed_nodes() == [("r", 7001)]
    assert RedisConfig(mode="cluster", nodes="x:1,y:2").seed_nodes() == [("x", 1), ("y", 2)]


def test_unknown_mode_and_sentinel_without_sentinels_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="APP_REDIS_MODE"):
        RedisConfig(mode="replicated")
    with pytest.raises(ConfigurationError, match="APP_REDIS_SENTINELS"):
        RedisConfig(mode="sentinel")
    assert RedisConfig(mode="sentinel", sentinels="s:26379").sentinel_addresses() == [("s", 26379)]


def test_a_cluster_has_only_database_zero_and_wait_replicas_is_not_negative() -> None:
    with pytest.raises(ConfigurationError, match="APP_REDIS_DB"):
        RedisConfig(mode="cluster", db=1)
    with pytest.raises(ConfigurationError, match="APP_REDIS_WAIT_REPLICAS"):
        RedisConfig(wait_replicas=-1)


def test_tls_context_verifies_by_default_and_insecure_skips_only_the_host_name() -> None:
    assert tls_context(RedisConfig()) is None
    context = tls_context(RedisConfig(tls=True))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    insecure = tls_context(RedisConfig(tls=True, tls_insecure=True))
    assert insecure is not None
    assert insecure.verify_mode == ssl.CERT_REQUIRED and not insecure.check_hostname
