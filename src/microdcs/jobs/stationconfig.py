"""Station configuration from the MES: what a scope allows, its job list limit and how
many of its jobs run at a time.

PUT (the default CloudEvent ``method``) allows an ID or stores a work master, DELETE takes
it back. These events have no response: an invalid one raises an input error, which the
transport turns into an error event on ``{prefix}/{scope}/events`` with ``mdcserrorkind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from microdcs.core.errors import InvalidRequestError
from microdcs.jobs.contract import SFC_RECIPE_SCHEMA, scope_name
from microdcs.processing.configevents import config_method
from microdcs.processing.processor import MessageContext, handles
from microdcs_models.machinery_jobs import (
    DispatchConfig,
    EquipmentBinding,
    EquipmentConfig,
    EquipmentTransport,
    JobAcceptanceConfig,
    MaterialClassConfig,
    MaterialDefinitionConfig,
    PersonnelConfig,
    PhysicalAssetConfig,
    WorkMasterConfig,
)

if TYPE_CHECKING:
    from microdcs.jobs.dispatcher import StationDispatcher
    from microdcs.jobs.storage import JobStore

#: Largest meaningful job list limit; 0 and 65535 both mean unlimited.
MAX_JOB_LIMIT = 65535
#: Station configuration hash of a scope: equipment ID -> its EquipmentBinding JSON.
BINDINGS = "equipmentbinding"


def _required_id(value: str) -> str:
    if not value or not value.strip():
        raise InvalidRequestError("field 'ID' must not be empty")
    return value


class RecipeValidator(Protocol):
    """Checks the recipe of a work master before it is stored (the SFC package has one).

    Raises an :class:`~microdcs.core.errors.InputError` naming every problem; the job
    processor is handed one at construction, so a recipe that could never run is refused
    when the MES configures it, not when a job that uses it starts.
    """

    def __call__(self, recipe_data: Any) -> None: ...


class StationConfigHandlers:
    """Handlers of the ``...config.*.v1`` events; mixed into the job processor."""

    jobs: JobStore
    dispatcher: StationDispatcher
    #: Checks SFC recipe data of work masters; ``None`` stores them unchecked.
    recipe_validator: RecipeValidator | None

    async def _allow(self, kind: str, item_id: str, context: MessageContext) -> None:
        method = config_method(context)
        scope = scope_name(context.subject)
        await self.jobs.allow_id(scope, kind, _required_id(item_id), allowed=method == "PUT")
        await self.dispatcher.resources_changed(scope)

    @handles(EquipmentConfig)
    async def config_equipment(self, message: EquipmentConfig, context: MessageContext) -> None:
        """Allow the equipment ID; its ``Binding`` (if any) tells the SFC engine how to
        reach it (a PUT without one, or a DELETE, removes the binding)."""
        binding = message.binding if config_method(context) == "PUT" else None
        if binding is not None:
            check_binding(binding)
        await self._allow("equipment", message.id, context)
        await store_binding(self.jobs, scope_name(context.subject), message.id, binding)

    @handles(MaterialClassConfig)
    async def config_material_class(
        self, message: MaterialClassConfig, context: MessageContext
    ) -> None:
        await self._allow("materialclass", message.id, context)

    @handles(MaterialDefinitionConfig)
    async def config_material_definition(
        self, message: MaterialDefinitionConfig, context: MessageContext
    ) -> None:
        await self._allow("materialdefinition", message.id, context)

    @handles(PersonnelConfig)
    async def config_personnel(self, message: PersonnelConfig, context: MessageContext) -> None:
        await self._allow("personnel", message.id, context)

    @handles(PhysicalAssetConfig)
    async def config_physical_asset(
        self, message: PhysicalAssetConfig, context: MessageContext
    ) -> None:
        await self._allow("physicalasset", message.id, context)

    @handles(WorkMasterConfig)
    async def config_work_master(self, message: WorkMasterConfig, context: MessageContext) -> None:
        method = config_method(context)
        wm_id = _required_id(message.id)
        scope = scope_name(context.subject)
        if method == "DELETE":
            await self.jobs.put_work_master(scope, wm_id, None, "")
            await self.dispatcher.resources_changed(scope)
            return
        if message.data is not None and not message.dataschema:
            raise InvalidRequestError("a work master with recipe 'data' needs a 'dataschema'")
        recipe = message.dataschema if message.data is not None and message.dataschema else ""
        if recipe == SFC_RECIPE_SCHEMA and self.recipe_validator is not None:
            # An invalid recipe is rejected here (error event, nothing stored), not when a
            # job that uses it starts.
            self.recipe_validator(message.data)
        await self.jobs.put_work_master(scope, wm_id, orjson.dumps(message.to_raw()), recipe)
        await self.dispatcher.resources_changed(scope)

    @handles(JobAcceptanceConfig)
    async def config_job_acceptance(
        self, message: JobAcceptanceConfig, context: MessageContext
    ) -> None:
        method = config_method(context)
        scope = scope_name(context.subject)
        if method == "DELETE":
            await self.jobs.set_max_jobs(scope, None)
            return
        limit = message.max_downloadable_job_orders
        if not 0 <= limit <= MAX_JOB_LIMIT:
            raise InvalidRequestError(
                f"max_downloadable_job_orders must be 0..{MAX_JOB_LIMIT}, not {limit}"
            )
        await self.jobs.set_max_jobs(scope, limit)

    @handles(DispatchConfig)
    async def config_dispatch(self, message: DispatchConfig, context: MessageContext) -> None:
        """``max_running_jobs`` of the scope (DELETE: back to the default, 1)."""
        method = config_method(context)
        scope = scope_name(context.subject)
        if method == "DELETE":
            await self.dispatcher.set_max_running(scope, None)
            return
        limit = message.max_running_jobs
        if not 0 <= limit <= MAX_JOB_LIMIT:
            raise InvalidRequestError(f"max_running_jobs must be 0..{MAX_JOB_LIMIT}, not {limit}")
        await self.dispatcher.set_max_running(scope, limit)


def check_binding(binding: EquipmentBinding) -> None:
    """A binding names what its transport needs: a topic prefix or a sidecar."""
    if binding.transport is EquipmentTransport.MQTT and not binding.topic_prefix:
        raise InvalidRequestError("an mqtt equipment binding needs a 'TopicPrefix'")
    if binding.transport is EquipmentTransport.RPC and not binding.sidecar:
        raise InvalidRequestError("an rpc equipment binding needs a 'Sidecar'")


async def store_binding(
    jobs: JobStore, scope: str, equipment_id: str, binding: EquipmentBinding | None
) -> None:
    key = jobs.keys(scope).config(BINDINGS)
    if binding is None:
        await jobs.redis.execute("HDEL", key, equipment_id)
    else:
        await jobs.redis.execute("HSET", key, equipment_id, orjson.dumps(binding.to_raw()))


class StoredEquipmentBindings:
    """The equipment bindings of a scope's station configuration, read from the job store
    (the SFC engine's :class:`~microdcs.sfc.engine.equipment_map.BindingSource`)."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    async def equipment_bindings(self, scope: str) -> Mapping[str, EquipmentBinding]:
        raw = await self.jobs.redis.execute("HGETALL", self.jobs.keys(scope).config(BINDINGS))
        items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): EquipmentBinding.from_raw(
                orjson.loads(v)
            )
            for k, v in items
        }
