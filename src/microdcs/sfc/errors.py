"""Errors of the SFC package.

A recipe that cannot run is an input error: the MES that sent the work master must fix
it, so :class:`RecipeValidationError` derives from :class:`microdcs.core.errors.InputError` and
lists *every* problem at once (one round trip to fix a recipe, not one per problem).
"""

from __future__ import annotations

from collections.abc import Sequence

from microdcs.core.errors import InputError


class RecipeValidationError(InputError):
    """The SFC recipe is invalid; ``problems`` names each defect in plain words."""

    kind = "invalid_recipe"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = len(self.problems)
        head = f"invalid SFC recipe ({count} problem{'s' if count != 1 else ''})"
        super().__init__(head + ": " + "; ".join(self.problems))


class ConditionSyntaxError(InputError):
    """A transition condition does not parse; ``position`` is the offending offset."""

    kind = "invalid_recipe"

    def __init__(self, condition: str, position: int, reason: str) -> None:
        super().__init__(f"condition {condition!r} at {position}: {reason}")
        self.condition = condition
        self.position = position
        self.reason = reason


class PredicateError(Exception):
    """A registered predicate raised; the evolution aborts the job with this reason.

    Not a :class:`~microdcs.core.errors.MicroDCSError`: it never leaves :func:`evolve`, which
    turns it into a ``JobAborted`` effect.
    """

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f"predicate {name!r} raised {type(cause).__name__}: {cause}")
        self.name = name
