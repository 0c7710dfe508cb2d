"""The alarm processor: alarm configuration, operator actions and journal queries over
MQTT (``{prefix}/{scope}/commands``) and MessagePack-RPC, and the alarm events out.

Configuration (``...config.alarm.v1``) follows the station configuration: PUT (the
default CloudEvent ``method``) stores a definition, DELETE removes it; there is no
response, and an invalid one raises an input error, which the transport turns into an
error response (or event) with ``mdcserrorkind``, nothing stored. An operator action
(``...alarm.action.v1``) is answered with the outcome for each alarm; when any alarm
refused the action, the response also carries ``mdcserrorkind`` ``not_allowed`` (or
``unknown_alarm``, ``invalid_request``) and ``mdcserrormessage`` with the reasons, so a
client that only looks at the error attributes still sees the refusal. The action runs
through :meth:`AlarmManager.act`, the same code the web view calls.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

from microdcs.alarms.contract import AlarmAction, AlarmView, JournalEntry
from microdcs.alarms.definitions import definition_from_config
from microdcs.alarms.manager import AlarmManager
from microdcs.alarms.retained import view_raw
from microdcs.core.cloudevent import ERROR_KIND, ERROR_MESSAGE, CloudEvent
from microdcs.core.errors import InvalidRequestError
from microdcs.core.wiretext import sanitize_text
from microdcs.jobs.contract import scope_name, subject_of_scope
from microdcs.processing.configevents import config_method
from microdcs.processing.processor import CloudEventProcessor, MessageContext, handles
from microdcs.processing.routing import Direction, Intent
from microdcs_models.alarm_action import AlarmActionRequest, AlarmActionResult, AlarmOutcome
from microdcs_models.alarm_config import AlarmConfig
from microdcs_models.alarm_event import AlarmEvent
from microdcs_models.alarm_journal import (
    AlarmJournalEntry,
    AlarmJournalQuery,
    AlarmJournalResult,
)

logger = logging.getLogger(__name__)

#: Default time range of a journal query without ``Start``.
DEFAULT_RANGE_SECONDS = 3600.0


class AlarmProcessor(CloudEventProcessor):
    """Configuration, operator actions and journal queries of every scope's alarms."""

    direction: ClassVar[Direction] = Direction.NORTHBOUND
    default_prefix: ClassVar[str] = "app/alarms"
    emitted = (AlarmEvent,)

    def __init__(self, manager: AlarmManager, *, source: str = "microdcs") -> None:
        super().__init__(source=source)
        self.manager = manager
        self.events_sent = 0

    # -- configuration --------------------------------------------------------------------
    @handles(AlarmConfig)
    async def config_alarm(self, message: AlarmConfig, context: MessageContext) -> None:
        method = config_method(context)
        scope = scope_name(context.subject)
        if not message.id or not message.id.strip():
            raise InvalidRequestError("field 'ID' must not be empty")
        if method == "DELETE":
            await self.manager.delete_definition(scope, message.id)
            return
        # Every problem of the definition is an input error here: nothing is stored.
        await self.manager.put_definition(scope, definition_from_config(message))

    # -- operator actions -----------------------------------------------------------------
    @handles(AlarmActionRequest)
    async def action(
        self, message: AlarmActionRequest, context: MessageContext
    ) -> AlarmActionResult:
        action = AlarmAction(message.action.value)
        if not message.alarms:
            raise InvalidRequestError("field 'Alarms' must name at least one alarm")
        outcomes = await self.manager.act(
            scope_name(context.subject), action, message.alarms,
            operator=message.operator, comment=message.comment or "",
            shelve_seconds=message.shelve_seconds,
        )  # fmt: skip
        return AlarmActionResult(
            action=action.value,
            outcomes=[
                AlarmOutcome(
                    alarm=o.alarm,
                    done=o.done,
                    state=o.state.value if o.state else None,
                    error=o.error,
                    reason=o.reason,
                )
                for o in outcomes
            ],
        )

    async def dispatch(self, event: CloudEvent, context: MessageContext) -> list[CloudEvent]:
        """Responses of refused actions carry the error attributes too (see module)."""
        responses = await super().dispatch(event, context)
        if event.type == AlarmActionRequest.__ce_type__:
            for response in responses:
                _mark_refusals(response)
        return responses

    # -- journal --------------------------------------------------------------------------
    @handles(AlarmJournalQuery)
    async def query_journal(
        self, message: AlarmJournalQuery, context: MessageContext
    ) -> AlarmJournalResult:
        end = message.end if message.end is not None else time.time()
        start = message.start if message.start is not None else end - DEFAULT_RANGE_SECONDS
        if start > end:
            raise InvalidRequestError("'Start' must not be after 'End'")
        limit = message.limit or 1000
        entries = await self.manager.journal(scope_name(context.subject), start, end, limit)
        if message.alarm:
            entries = [e for e in entries if e.alarm == message.alarm]
        return AlarmJournalResult(entries=[_journal_entry(e) for e in entries])

    # -- alarm events (the manager's AlarmEventSink) --------------------------------------
    async def alarm_event(self, view: AlarmView, entry: JournalEntry) -> None:
        event = AlarmEvent.from_raw(
            {
                **view_raw(view),
                "Event": entry.event,
                "Previous": entry.previous.value,
                "At": entry.at,
            }
        )
        await self.publish(event, subject=subject_of_scope(view.scope), intent=Intent.EVENTS)
        self.events_sent += 1


def _journal_entry(entry: JournalEntry) -> AlarmJournalEntry:
    return AlarmJournalEntry(
        alarm=entry.alarm, at=entry.at, event=entry.event, state=entry.state.value,
        previous=entry.previous.value, priority=entry.priority.value, value=entry.value,
        operator=entry.operator, comment=entry.comment,
    )  # fmt: skip


def _mark_refusals(response: CloudEvent) -> None:
    result = AlarmActionResult.decode(response.data, response.datacontenttype)
    refused = [o for o in result.outcomes if not o.done]
    if not refused:
        return
    response.extensions[ERROR_KIND] = refused[0].error or "not_allowed"
    response.extensions[ERROR_MESSAGE] = sanitize_text(
        "; ".join(f"{o.alarm}: {o.reason or o.error}" for o in refused)
    )
