"""What the engine needs from the rest of the replica, as interfaces the engine owns.

The app package hands the engine an implementation of each: the job processor is the
:class:`~microdcs.jobs.contract.JobControl`, :class:`~microdcs.jobs.recipes.JobStoreRecipes`
the :class:`RecipeSource`, and the equipment processor the :class:`EquipmentPort`. The
engine never imports them, so it is tested with small fakes and no broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from microdcs.equipment.contract import Cancel, Command, EquipmentMessage
from microdcs.jobs.contract import JobRecipe
from microdcs.plantdata.contract import TagSample
from microdcs.sfc.engine.progress import StepState
from microdcs.sfc.engine.tracecontext import Carried
from microdcs_models.sfc_step_event import SfcProgressEvent

#: Where equipment answers and events go: the engine matches them to waiting actions.
EquipmentReceiver = Callable[[str | None, EquipmentMessage], Awaitable[None]]


class RecipeSource(Protocol):
    """Reads a job's recipe and whether the job runs (job management implements it)."""

    async def recipe(self, scope: str, job_id: str) -> JobRecipe | None:
        """The SFC recipe of the job's work master; ``None`` if it has none."""
        ...

    async def is_running(self, scope: str, job_id: str) -> bool: ...


class EquipmentPort(Protocol):
    """Commands out to a scope's equipment; answers come back through the receiver."""

    async def send_command(self, subject: str | None, command: Command) -> None:
        """Send (or send again, same correlation id) the command of a push_command run."""
        ...

    async def send_cancel(self, subject: str | None, cancel: Cancel) -> None:
        """Tell equipment to stop a cancelled run; no answer is expected."""
        ...

    def set_receiver(self, receiver: EquipmentReceiver) -> None:
        """Who gets every answer and event from equipment (the engine, at construction)."""
        ...


class TagValues(Protocol):
    """Current values of plant data tags, for conditions that read them (the plant data
    table's :class:`~microdcs.plantdata.contract.TagReader` fits)."""

    async def read(self, scope: str, tags: Sequence[str]) -> Mapping[str, TagSample]:
        """The current sample of each named tag configured in ``scope`` (others absent)."""
        ...


class ProgressSink(Protocol):
    """Where step progress events go (the job's scope ``events`` topic, in the app)."""

    async def progress(self, subject: str | None, event: SfcProgressEvent, trace: Carried) -> None:
        """Publish ``event`` correlated with its job, carrying ``trace``."""
        ...

    async def step_state(self, subject: str | None, state: StepState) -> None:
        """Keep ``state`` as the job's retained step state (none left: remove it)."""
        ...
