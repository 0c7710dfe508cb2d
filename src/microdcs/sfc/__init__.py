"""Pure SFC recipe logic: validation, compilation, conditions and evolution (no I/O).

The engine that runs recipes across replicas is a thin shell around :func:`evolve`:
load an :class:`Execution`, evolve it with an event, compare-and-swap it back, perform
the effects. See ``docs/sfc.md`` for the semantics.
"""

from microdcs.sfc.compiled import CompiledAction, CompiledRecipe, compile_recipe
from microdcs.sfc.conditions import Condition, ConditionContext, Predicate
from microdcs.sfc.errors import ConditionSyntaxError, RecipeValidationError
from microdcs.sfc.events import (
    Abort,
    ActionCompleted,
    ActionFailed,
    CancelAction,
    CancelTimer,
    DispatchAction,
    Effect,
    Event,
    EventIgnored,
    JobAborted,
    JobCompleted,
    JobStopped,
    JobSuspended,
    Pause,
    Reevaluate,
    Resume,
    ScheduleTimer,
    Start,
    StepEntered,
    StepExited,
    Stop,
    TimerDue,
    TransitionFired,
)
from microdcs.sfc.evolution import MAX_FIRINGS, evolve, new_execution, replay_effects
from microdcs.sfc.parser import parse_condition
from microdcs.sfc.state import (
    ActionRun,
    Execution,
    ExecutionStatus,
    RunStatus,
    Timer,
    TimerKind,
)
from microdcs.sfc.validation import RecipeValidation, recipe_warnings, validate_recipe

__all__ = [
    "MAX_FIRINGS",
    "Abort",
    "ActionCompleted",
    "ActionFailed",
    "ActionRun",
    "CancelAction",
    "CancelTimer",
    "CompiledAction",
    "CompiledRecipe",
    "Condition",
    "ConditionContext",
    "ConditionSyntaxError",
    "DispatchAction",
    "Effect",
    "Event",
    "EventIgnored",
    "Execution",
    "ExecutionStatus",
    "JobAborted",
    "JobCompleted",
    "JobStopped",
    "JobSuspended",
    "Pause",
    "Predicate",
    "RecipeValidation",
    "RecipeValidationError",
    "Reevaluate",
    "Resume",
    "RunStatus",
    "ScheduleTimer",
    "Start",
    "StepEntered",
    "StepExited",
    "Stop",
    "Timer",
    "TimerDue",
    "TimerKind",
    "TransitionFired",
    "compile_recipe",
    "evolve",
    "new_execution",
    "parse_condition",
    "recipe_warnings",
    "replay_effects",
    "validate_recipe",
]
