"""PUBLISH properties encoded with kept user properties are the same bytes as without."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdcs.transports.mqtt import codec

NAMES = frozenset({"type", "source"})
pairs = st.lists(
    st.tuples(
        st.sampled_from(["type", "source", "id", "time"]),
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=20,
        ),
    ),
    max_size=8,
)


@given(first=pairs, second=pairs)
def test_kept_pairs_encode_to_the_same_bytes(
    first: list[tuple[str, str]], second: list[tuple[str, str]]
) -> None:
    cache = codec.PairCache(NAMES, limit=3)
    for user_properties in (first, second, first):
        plain = codec.encode_publish_properties(content_type="a/b", user_properties=user_properties)
        kept = codec.encode_publish_properties(
            content_type="a/b", user_properties=user_properties, repeating=cache
        )
        assert kept == plain
        props, _ = codec.decode_properties(kept, 0, len(kept))
        assert props.get(codec.USER_PROPERTY, []) == user_properties


def test_only_pairs_with_the_given_names_are_kept_and_the_cache_stays_bounded() -> None:
    cache = codec.PairCache(NAMES, limit=2)
    codec.encode_publish_properties(
        user_properties=[("type", "t1"), ("id", "1"), ("source", "s")], repeating=cache
    )
    assert set(cache.pairs) == {("type", "t1"), ("source", "s")}
    codec.encode_publish_properties(user_properties=[("type", "t2")], repeating=cache)
    assert len(cache.pairs) <= 2
    assert ("type", "t2") in cache.pairs


def test_an_over_long_value_is_refused_even_for_a_kept_name() -> None:
    cache = codec.PairCache(NAMES)
    with pytest.raises(ValueError):
        codec.encode_publish_properties(user_properties=[("type", "x" * 70000)], repeating=cache)
    assert not cache.pairs
