"""The binder's predicate registration: names it refuses, and what it records."""

from __future__ import annotations

import pytest

from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.sfc import ConditionContext


def binder() -> Binder:
    return Binder(AppConfig(), lambda *a: None, lambda t: None)


def test_a_decorated_function_is_registered_under_its_name_and_returned_unchanged() -> None:
    b = binder()

    def ready(context: ConditionContext) -> bool:
        return True

    assert b.predicate("ready")(ready) is ready
    assert b.predicates == {"ready": ready}


@pytest.mark.parametrize("name", ["done", "true", "and", "param", "failed", "a.b", "1x", "__x", ""])
def test_a_keyword_or_a_name_the_parser_cannot_read_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        binder().predicate(name)


def test_a_name_registered_twice_is_refused() -> None:
    b = binder()
    b.predicate("ready")(lambda c: True)
    with pytest.raises(ValueError, match="already registered"):
        b.predicate("ready")
