"""The northbound job management processor: OPC 10031-4 / OPC 40001-3 methods for the MES.

Every handler costs one Lua script call in Redis; a successful change raises the status
event on ``{prefix}/{scope}/events``, wakes the retained-topic publisher and tells the
start policy and job listeners (the SFC engine). Malformed requests get the method's
typed response with ReturnStatus 1<<32; so does a JobOrderID beyond the limits (length,
control characters, topic wildcards), with ``mdcserrorkind`` ``invalid_request``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import orjson

from microdcs.core.cloudevent import CloudEvent, text_problem
from microdcs.core.errors import InputError, InvalidRequestError
from microdcs.jobs.contract import (
    JobEvent,
    JobEventKind,
    JobListener,
    scope_name,
    subject_of_scope,
)
from microdcs.jobs.dispatcher import Move, StationDispatcher
from microdcs.jobs.returnstatus import ReturnStatus
from microdcs.jobs.startpolicy import StartPolicy
from microdcs.jobs.statemachine import STORED, STORED_AND_STARTED, Command
from microdcs.jobs.states import COMPLETED, JobState, JobStatus, parse_state_filter
from microdcs.jobs.stationconfig import RecipeValidator, StationConfigHandlers
from microdcs.jobs.storage import Change, JobStore, origin_of
from microdcs.models.base import Model
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction, Intent
from microdcs_models.machinery_jobs import (
    AbortRequest,
    AbortResponse,
    CancelRequest,
    CancelResponse,
    ClearRequest,
    ClearResponse,
    ISA95JobOrderStatusEventType,
    ISA95JobResponseDataType,
    ISA95ParameterDataType,
    PauseRequest,
    PauseResponse,
    RequestJobResponseByJobOrderIDRequest,
    RequestJobResponseByJobOrderIDResponse,
    RequestJobResponseByJobOrderStateRequest,
    RequestJobResponseByJobOrderStateResponse,
    ResumeRequest,
    ResumeResponse,
    RevokeStartRequest,
    RevokeStartResponse,
    StartRequest,
    StartResponse,
    StopRequest,
    StopResponse,
    StoreAndStartRequest,
    StoreAndStartResponse,
    StoreRequest,
    StoreResponse,
    UpdateRequest,
    UpdateResponse,
)
from microdcs_models.sfc_step_event import SfcProgressEvent

logger = logging.getLogger(__name__)

INVALID = ReturnStatus.INVALID_REQUEST
#: Ended/Completed: the MES fetching its job response Closes it.
_COMPLETED = JobStatus(JobState.ENDED, COMPLETED)
JobOrderRequest = StoreRequest | StoreAndStartRequest | UpdateRequest

#: What an MES method tells the start policy and the listeners when it succeeds.
_EVENT_OF: dict[Command, JobEventKind] = {
    Command.START: JobEventKind.ALLOWED_TO_START,
    Command.STORE_AND_START: JobEventKind.ALLOWED_TO_START,
    Command.REVOKE_START: JobEventKind.START_REVOKED,
    Command.UPDATE: JobEventKind.UPDATED,
    Command.PAUSE: JobEventKind.PAUSED,
    Command.RESUME: JobEventKind.RESUMED,
    Command.STOP: JobEventKind.STOPPED,
    Command.ABORT: JobEventKind.ABORTED,
    Command.CANCEL: JobEventKind.CANCELLED,
    Command.CLEAR: JobEventKind.CLEARED,
    Command.SYSTEM_START: JobEventKind.STARTED,
    Command.SYSTEM_END: JobEventKind.ENDED,
    Command.SYSTEM_ABORT: JobEventKind.ABORTED,
}


#: Characters a JobOrderID must not contain: it is a level of its retained topics
#: (``order/{id}``, ``result/{id}``), where these would split or wildcard the topic name.
TOPIC_UNSAFE = frozenset("/+#")
#: Default longest JobOrderID (``APP_LIMIT_ID_LENGTH``).
MAX_ID_LENGTH = 256  # the default of APP_LIMIT_ID_LENGTH


def job_id_problem(job_id: str | None, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why ``job_id`` cannot name a job (its Redis keys and retained topics), or ``None``.

    The reason does not quote the id: it goes into the answer and the log.
    """
    if not job_id:
        return "must not be empty"
    problem = text_problem(job_id, max_length)  # length, then U+0000 and control characters
    if problem is None and not TOPIC_UNSAFE.isdisjoint(job_id):
        problem = "must not contain '/', '+' or '#' (it is a topic level)"
    return problem


class _RefusedId(InvalidRequestError):
    """A request names a job by an id beyond the limits; answered in the method's type."""


class JobManagementProcessor(StationConfigHandlers, CloudEventProcessor):
    """Job orders of every scope, for the MES; also the :class:`JobControl` of the engine."""

    direction: ClassVar[Direction] = Direction.NORTHBOUND
    default_prefix: ClassVar[str] = "app/jobs"
    #: On ``{prefix}/{scope}/events``: every state change of a job, and the SFC engine's
    #: step progress of its recipe (published in this processor's name by the app's
    #: progress sink), so both are in its retained metadata and the AsyncAPI document.
    emitted: ClassVar[tuple[type[Model], ...]] = (
        ISA95JobOrderStatusEventType,
        SfcProgressEvent,
    )

    def __init__(
        self,
        jobs: JobStore,
        *,
        source: str = "microdcs",
        start_policy: StartPolicy | None = None,
        id_length: int = MAX_ID_LENGTH,
        recipe_validator: RecipeValidator | None = None,
        max_running: int = 1,
        dispatch_poll: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(source=source)
        self.jobs = jobs
        self.recipe_validator = recipe_validator
        self._id_length = id_length
        self._listeners: list[JobListener] = []
        self._change_listeners: list[Callable[[str], None]] = []
        #: The default start policy; its task runs only when it is the policy in use.
        self.dispatcher = StationDispatcher(
            jobs, self._dispatched, max_running=max_running, poll_seconds=dispatch_poll,
            clock=clock,
        )  # fmt: skip
        self.start_policy: StartPolicy = start_policy or self.dispatcher
        if self.start_policy is self.dispatcher:
            self._listeners.append(self.dispatcher)

    def add_listener(self, listener: JobListener) -> None:
        """Tell ``listener`` about every job move (how the SFC engine follows the MES)."""
        self._listeners.append(listener)

    def add_change_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(scope)`` after every stored change (wakes the publisher)."""
        self._change_listeners.append(listener)

    # -- malformed requests ---------------------------------------------------------------
    def on_invalid(self, event: CloudEvent, error: InputError) -> Model | None:
        spec = self._mdcs_handlers.get(event.type)
        response_type = spec.model.__response_type__ if spec is not None else None
        if response_type is None:
            return None  # station configuration: an error event on the events topic
        return response_type(**{"return_status": INVALID})

    async def dispatch(self, event: CloudEvent, context: MessageContext) -> list[CloudEvent]:
        """As the base class, and an id beyond the limits gets the typed invalid answer."""
        try:
            return await super().dispatch(event, context)
        except _RefusedId as error:
            return self.invalid_response(event, error)

    def _checked_id(self, job_id: str | None) -> str:
        """``job_id`` if it can name a job; else :class:`_RefusedId` (invalid request)."""
        problem = job_id_problem(job_id, self._id_length)
        if problem is not None:
            raise _RefusedId(f"JobOrderID {problem}")
        assert job_id is not None
        return job_id

    # -- Store, StoreAndStart, Update -------------------------------------------------------
    # Store and StoreAndStart are idempotent by the job itself (it keeps the origin of the
    # request that stored it, see JobStore.put_order): no dedupe claim and record, two
    # Redis round trips less per Store. Update is not (a copy of an Update applied after a
    # newer one would undo it) and keeps the registry.
    @handles(StoreRequest, deduplicate=False)
    async def store(self, message: StoreRequest, context: MessageContext) -> Model:
        status = await self._put(message, context, Command.STORE)
        return StoreResponse(return_status=status)

    @handles(StoreAndStartRequest, deduplicate=False)
    async def store_and_start(
        self, message: StoreAndStartRequest, context: MessageContext
    ) -> Model:
        status = await self._put(message, context, Command.STORE_AND_START)
        return StoreAndStartResponse(return_status=status)

    @handles(UpdateRequest)
    async def update(self, message: UpdateRequest, context: MessageContext) -> Model:
        status = await self._put(message, context, Command.UPDATE)
        return UpdateResponse(return_status=status)

    async def _put(
        self, message: JobOrderRequest, context: MessageContext, command: Command
    ) -> ReturnStatus:
        order = message.job_order
        self._checked_id(order.job_order_id)
        new = {Command.STORE: STORED, Command.STORE_AND_START: STORED_AND_STARTED}.get(command)
        scope = scope_name(context.subject)
        event = context.event
        origin = b"" if new is None else origin_of(event.source, event.id)
        change = await self.jobs.put_order(
            scope, order, orjson.dumps(order.to_raw()), new=new, origin=origin
        )
        if change.again:
            context.repeated = True  # answered as the first copy was; nothing to announce
            return change.status
        if change.ok:
            await self._changed(context.subject, order.job_order_id, change, command, context.event)
        return change.status

    # -- methods on a stored job ------------------------------------------------------------
    @handles(StartRequest)
    async def start(self, message: StartRequest, context: MessageContext) -> Model:
        return StartResponse(return_status=await self._mes(message, context, Command.START))

    @handles(RevokeStartRequest)
    async def revoke_start(self, message: RevokeStartRequest, context: MessageContext) -> Model:
        status = await self._mes(message, context, Command.REVOKE_START)
        return RevokeStartResponse(return_status=status)

    @handles(PauseRequest)
    async def pause(self, message: PauseRequest, context: MessageContext) -> Model:
        return PauseResponse(return_status=await self._mes(message, context, Command.PAUSE))

    @handles(ResumeRequest)
    async def resume(self, message: ResumeRequest, context: MessageContext) -> Model:
        return ResumeResponse(return_status=await self._mes(message, context, Command.RESUME))

    @handles(StopRequest)
    async def stop(self, message: StopRequest, context: MessageContext) -> Model:
        return StopResponse(return_status=await self._mes(message, context, Command.STOP))

    @handles(AbortRequest)
    async def abort(self, message: AbortRequest, context: MessageContext) -> Model:
        return AbortResponse(return_status=await self._mes(message, context, Command.ABORT))

    @handles(CancelRequest)
    async def cancel(self, message: CancelRequest, context: MessageContext) -> Model:
        return CancelResponse(return_status=await self._mes(message, context, Command.CANCEL))

    @handles(ClearRequest)
    async def clear(self, message: ClearRequest, context: MessageContext) -> Model:
        return ClearResponse(return_status=await self._mes(message, context, Command.CLEAR))

    async def _mes(self, message: Any, context: MessageContext, command: Command) -> ReturnStatus:
        job_id = self._checked_id(message.job_order_id)
        return await self._move(context.subject, job_id, command, request=context.event)

    # -- queries ---------------------------------------------------------------------------
    @handles(RequestJobResponseByJobOrderIDRequest)
    async def response_by_id(
        self, message: RequestJobResponseByJobOrderIDRequest, context: MessageContext
    ) -> Model:
        job_id = self._checked_id(message.job_order_id)
        found = await self.jobs.job(scope_name(context.subject), job_id)
        if found is None or not found[0].has_response:
            return RequestJobResponseByJobOrderIDResponse(
                return_status=ReturnStatus.UNKNOWN_JOB_ORDER_ID
            )
        response = ISA95JobResponseDataType.from_raw(found[0].response_raw())
        if found[0].status == _COMPLETED:
            # The MES has its response: Ended/Completed -> Ended/Closed (8 if it raced).
            await self._move(context.subject, job_id, Command.SYSTEM_CLOSE)
        return RequestJobResponseByJobOrderIDResponse(
            job_response=response, return_status=ReturnStatus.OK
        )

    @handles(RequestJobResponseByJobOrderStateRequest)
    async def responses_by_state(
        self, message: RequestJobResponseByJobOrderStateRequest, context: MessageContext
    ) -> Model:
        wanted = parse_state_filter(message.job_order_state)
        if wanted is None:
            return RequestJobResponseByJobOrderStateResponse(return_status=INVALID)
        records = [
            r for r in await self.jobs.responses(scope_name(context.subject))
            if wanted.matches(r.status)
        ]  # fmt: skip
        matching = [ISA95JobResponseDataType.from_raw(r.response_raw()) for r in records]
        # The MES has these responses: the Completed ones are Closed (pipelined moves).
        await asyncio.gather(
            *(
                self._move(context.subject, r.job_id, Command.SYSTEM_CLOSE)
                for r in records
                if r.status == _COMPLETED
            )
        )
        return RequestJobResponseByJobOrderStateResponse(
            job_responses=matching, return_status=ReturnStatus.OK
        )

    # -- JobControl: system moves (start policy, SFC engine) -----------------------------------
    async def start_job(self, subject: str | None, job_id: str) -> ReturnStatus:
        return await self._move(subject, job_id, Command.SYSTEM_START)

    async def end_job(
        self,
        subject: str | None,
        job_id: str,
        response_data: Sequence[ISA95ParameterDataType] | None = None,
    ) -> ReturnStatus:
        data = orjson.dumps([p.to_raw() for p in response_data]) if response_data else None
        return await self._move(subject, job_id, Command.SYSTEM_END, response_data=data)

    async def abort_job(self, subject: str | None, job_id: str, reason: str) -> ReturnStatus:
        data = orjson.dumps([{"ID": "ReasonForStateChange", "Value": reason}])
        return await self._move(subject, job_id, Command.SYSTEM_ABORT, response_data=data)

    async def suspend_job(self, subject: str | None, job_id: str) -> ReturnStatus:
        return await self._move(subject, job_id, Command.SYSTEM_INTERRUPT)

    async def _dispatched(self, scope: str, moves: Sequence[Move]) -> None:
        """The dispatcher moved jobs: their status events, and STARTED for the engine."""
        subject = subject_of_scope(scope)
        for move in moves:
            record = move.change.record
            assert record is not None
            starts = move.kind in ("start", "handover")
            await self._changed(
                subject, record.job_id, move.change, Command.SYSTEM_START if starts else None, None
            )

    # -- common ----------------------------------------------------------------------------
    async def _move(
        self,
        subject: str | None,
        job_id: str,
        command: Command,
        *,
        request: CloudEvent | None = None,
        response_data: bytes | None = None,
    ) -> ReturnStatus:
        change = await self.jobs.transition(
            scope_name(subject), job_id, command, response_data=response_data
        )
        if change.ok:
            await self._changed(subject, job_id, change, command, request)
        return change.status

    async def _changed(
        self,
        subject: str | None,
        job_id: str,
        change: Change,
        command: Command | None,
        request: CloudEvent | None,
    ) -> None:
        """After a stored change: status event, publisher wake-up, policy and listeners."""
        record = change.record
        assert record is not None
        raw: dict[str, Any] = {"JobOrder": record.order_raw(), "JobState": record.status.to_wire()}
        if record.has_response:
            raw["JobResponse"] = record.response_raw()
        # The record was stored from a validated Store: sent as it is, not rebuilt.
        await self.publish_wire(
            ISA95JobOrderStatusEventType,
            raw,
            subject=subject,
            intent=Intent.EVENTS,
            correlationid=(request.correlationid or request.id) if request else None,
            causationid=request.id if request else None,
        )
        scope = scope_name(subject)
        for notify in self._change_listeners:
            notify(scope)
        kind = _EVENT_OF.get(command) if command is not None else None
        if kind is None:
            return
        event = JobEvent(kind, subject, job_id, change.recipe, by_mes=request is not None)
        # The change is stored: a failing listener or policy must not turn it into an
        # error response, so failures are logged here.
        try:
            for listener in self._listeners:
                await listener(event)
            if kind is JobEventKind.ALLOWED_TO_START:
                await self.start_policy.allowed_to_start(event, self)
        except Exception:
            logger.exception("job listener or start policy failed on %s of %s", kind, job_id)
