"""Generated from sfc_recipe.schema.json by ``microdcs dataclassgen``; do not edit by hand.

SFC recipe (IEC 61131-3 sequential function chart) carried in a work master's `data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from microdcs.models import Model


@dataclass(kw_only=True)
class SfcStep(Model):
    """A step of the chart."""

    class Config(Model.Config):
        forbid_extra_keys = True

    #: Unique step name.
    name: str = field(metadata={"alias": "Name"})
    #: The step active when the recipe starts; exactly one step is initial.
    initial: bool | None = field(default=None, metadata={"alias": "Initial"})


@dataclass(kw_only=True)
class SfcTransition(Model):
    """A transition between steps or branches."""

    class Config(Model.Config):
        forbid_extra_keys = True

    #: Name of the step or branch before the transition.
    source: str = field(metadata={"alias": "Source"})
    #: Name of the step or branch after the transition.
    target: str = field(metadata={"alias": "Target"})
    #: Condition name: `true`, `done`, a comparison such as `result.temperature >= 180`, or a
    #: registered predicate.
    condition: str | None = field(default=None, metadata={"alias": "Condition"})
    #: Lower priority wins when several transitions could fire.
    priority: int | None = field(default=None, metadata={"alias": "Priority"})
    #: Longest time this transition may wait, from the moment all its source steps are active,
    #: before OnTimeout applies; absent or 0: no timeout.
    timeout_seconds: float | None = field(
        default=None, metadata={"alias": "TimeoutSeconds", "minimum": 0}
    )
    #: What a timeout does: `suspend` (default: the job is suspended until the MES resumes it),
    #: `abort`, or the name of a step to go to instead of the target.
    on_timeout: str | None = field(default=None, metadata={"alias": "OnTimeout"})


class SfcQualifier(StrEnum):
    """IEC 61131-3 action qualifier."""

    N = "N"
    P = "P"
    P0 = "P0"
    P1 = "P1"
    S = "S"
    R = "R"
    L = "L"
    D = "D"
    SD = "SD"
    DS = "DS"
    SL = "SL"


class SfcInteraction(StrEnum):
    """How an action talks to equipment: send a command and await its response, or await an
    event.
    """

    PUSH_COMMAND = "push_command"
    PULL_EVENT = "pull_event"


@dataclass(kw_only=True)
class SfcAction(Model):
    """An action of a step."""

    class Config(Model.Config):
        forbid_extra_keys = True

    #: Action name; R resets the stored action of the same name.
    name: str = field(metadata={"alias": "Name"})
    #: Name of the step the action belongs to.
    step: str = field(metadata={"alias": "Step"})
    qualifier: SfcQualifier = field(metadata={"alias": "Qualifier"})
    interaction: SfcInteraction = field(metadata={"alias": "Interaction"})
    #: CloudEvent type of the command sent or the event awaited.
    type_id: str = field(metadata={"alias": "TypeId"})
    #: How long to wait for equipment before the action fails.
    timeout_seconds: float | None = field(
        default=None, metadata={"alias": "TimeoutSeconds", "minimum": 0}
    )
    #: Duration in seconds for the L, D, SD, DS and SL qualifiers.
    time: float | None = field(default=None, metadata={"alias": "Time", "minimum": 0})
    #: Data of the command (push_command).
    parameters: dict[str, Any] | None = field(default=None, metadata={"alias": "Parameters"})
    #: Equipment ID the action talks to; the station configuration maps it to a processor binding
    #: (an MQTT topic prefix or an RPC sidecar). Absent: the default equipment processor.
    equipment: str | None = field(default=None, metadata={"alias": "Equipment"})


class SfcBranchType(StrEnum):
    """Selection (OR) or simultaneous (AND) branch."""

    SELECTION = "selection"
    SIMULTANEOUS = "simultaneous"


@dataclass(kw_only=True)
class SfcBranch(Model):
    """A divergence into parallel or alternative paths."""

    class Config(Model.Config):
        forbid_extra_keys = True

    #: Branch name, usable as transition source or target.
    name: str = field(metadata={"alias": "Name"})
    type: SfcBranchType = field(metadata={"alias": "Type"})
    #: The paths; each is a list of step names.
    branches: list[list[str]] = field(metadata={"alias": "Branches"})


@dataclass(kw_only=True)
class SfcRecipe(Model):
    """SFC recipe (IEC 61131-3 sequential function chart) carried in a work master's `data`."""

    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/sfc_recipe.schema.json"
    )

    class Config(Model.Config):
        forbid_extra_keys = True

    #: The steps of the chart.
    steps: list[SfcStep] = field(metadata={"alias": "Steps"})
    #: The transitions of the chart.
    transitions: list[SfcTransition] = field(metadata={"alias": "Transitions"})
    #: The actions of the steps.
    actions: list[SfcAction] | None = field(default=None, metadata={"alias": "Actions"})
    #: Selection and simultaneous branches.
    branches: list[SfcBranch] | None = field(default=None, metadata={"alias": "Branches"})
    #: Longest time the chart may wait on transition conditions (some active step done, nothing
    #: firing) before the job is suspended with a stall event; absent or 0: no watchdog.
    watchdog_seconds: float | None = field(
        default=None, metadata={"alias": "WatchdogSeconds", "minimum": 0}
    )
