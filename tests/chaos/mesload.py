"""The MES of the fault suite: Store requests with a ledger of what became of each one.

It speaks MQTT with microdcs's own lean client because only that one sends fast enough
for a 10x overload from one Python process; the request properties are built by hand, as
any MES would. The client keeps its session (stable client id, clean start off) and
reconnects by itself, so a broker restart does not lose its QoS 1 requests, and every
answer is filed by correlation data: answered, answered with an error kind (``expired``
among them), answered twice, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from microdcs.transports.mqtt import codec
from microdcs.transports.mqtt.client import ClientOptions, MqttClient, MqttConnectionError

JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
STORE = f"{JC}.Store.v2"
#: The existence check of a job: an Update of an unchanged order is Good (1) for a stored
#: job still waiting to start and UnknownJobOrderId (2) otherwise; it creates nothing.
#: (RequestJobResponseByJobOrderID knows only jobs that ran.)
UPDATE = f"{JC}.Update.v2"
ERROR_KIND = "mdcserrorkind"
OK = 1
UNKNOWN_JOB = 2


@dataclass(slots=True)
class Request:
    """One request sent, and every answer it got."""

    job_id: str
    event_id: str
    topic: str
    body: bytes | None  # None: a Store, rebuilt from job_id when sent again (saves memory)
    ce_type: str
    expiry: int | None
    sent: float
    answers: list[tuple[float, int | None, str | None]] = field(default_factory=list)
    #: When the broker acknowledged the request (its Message Expiry starts there; an
    #: open loop may queue requests in this client long before they reach the broker).
    accepted: float | None = None
    #: Wall-clock time of that acknowledgement and the first answer's CloudEvent ``time``
    #: (when the runtime built it): what the runtime did, apart from how late an
    #: overloaded broker and this client delivered the answer.
    accepted_wall: float | None = None
    produced_wall: float | None = None

    def accept(self) -> None:
        self.accepted = time.monotonic()
        self.accepted_wall = time.time()

    @property
    def answered(self) -> bool:
        return bool(self.answers)

    @property
    def status(self) -> int | None:
        return self.answers[0][1] if self.answers else None

    @property
    def error_kind(self) -> str | None:
        return self.answers[0][2] if self.answers else None


def store_body(job_id: str) -> bytes:
    return orjson.dumps(
        {
            "JobOrder": {
                "JobOrderID": job_id,
                "Description": [{"Locale": "en", "Text": "chaos job"}],
                "Priority": 3,
                "JobOrderParameters": [{"ID": "RunsPlanned", "Value": 1}],
            }
        }
    )


class MesLoad:
    """``async with MesLoad(port_of, topic) as mes``: Store and query job orders.

    ``port_of`` is called on every (re)connect, so a restarted broker on the same port
    needs nothing else.
    """

    def __init__(self, port: int, commands_topic: str, *, receive_maximum: int = 65535) -> None:
        self.port = port
        self.commands = commands_topic
        self.response_topic = f"chaosmes/{uuid.uuid4().hex}/responses"
        self.requests: dict[bytes, Request] = {}
        self.counter = 0
        self.run_id = uuid.uuid4().hex[:8]
        self.reconnects = 0
        self._closing = False
        self._keeper: asyncio.Task[None] | None = None
        self._answer_event = asyncio.Event()
        self.client = MqttClient(
            ClientOptions(
                host="127.0.0.1",
                port=port,
                client_id=f"chaosmes-{self.run_id}",
                clean_start=False,
                session_expiry=600,
                receive_maximum=receive_maximum,
                publish_attempts=1000,
            ),
            self._on_message,
        )

    async def __aenter__(self) -> MesLoad:
        await self._connect()
        self._keeper = asyncio.create_task(self._keep_connected())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        with contextlib.suppress(MqttConnectionError, OSError):
            await self.client.disconnect(end_session=True)

    async def _connect(self) -> None:
        await self.client.connect()
        await self.client.subscribe([(self.response_topic, 1)])

    async def _keep_connected(self) -> None:
        """Reconnect (same session) whenever the broker goes away."""
        while not self._closing:
            await self.client.wait_closed()
            while not self._closing:
                try:
                    await self._connect()
                    self.reconnects += 1
                    break
                except (MqttConnectionError, OSError):
                    await asyncio.sleep(0.1)

    def _on_message(self, message: codec.Publish) -> None:
        if message.qos:  # an `expired` answer comes at QoS 0: nothing to acknowledge
            self.client.ack(message.packet_id, self.client.epoch)
        request = self.requests.get(message.correlation_data or b"")
        if request is None:
            return
        attributes = dict(message.user_properties)
        kind = attributes.get(ERROR_KIND)
        if not request.answers and "time" in attributes:
            with contextlib.suppress(ValueError):
                produced = attributes["time"].replace("Z", "+00:00")
                request.produced_wall = datetime.fromisoformat(produced).timestamp()
        status: int | None = None
        if kind is None:
            with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                status = int(orjson.loads(message.payload or b"{}")["ReturnStatus"])
        request.answers.append((time.monotonic(), status, kind))
        self._answer_event.set()

    # -- sending ----------------------------------------------------------------------------
    def send(
        self,
        ce_type: str = STORE,
        body: bytes | None = None,
        *,
        job_id: str | None = None,
        expiry: int | None = None,
    ) -> Request:
        """Publish one request (QoS 1) now; a Store of a new job unless told otherwise."""
        self.counter += 1
        job_id = job_id or f"J-{self.run_id}-{self.counter}"
        event_id = f"{self.run_id}-{self.counter}"
        correlation = event_id.encode()
        request = Request(job_id, event_id, self.commands, body, ce_type, expiry, 0.0)
        self.requests[correlation] = request
        self._publish(correlation, request)
        return request

    def _publish(self, correlation: bytes, request: Request) -> None:
        props = codec.encode_publish_properties(
            payload_format=1,
            message_expiry=request.expiry,
            content_type="application/json",
            response_topic=self.response_topic,
            correlation_data=correlation,
            user_properties=[
                ("specversion", "1.0"),
                ("id", request.event_id),
                ("source", "chaos/mes"),
                ("type", request.ce_type),
            ],
        )
        request.sent = time.monotonic()
        body = request.body if request.body is not None else store_body(request.job_id)
        self.client.publish(request.topic, body, props, qos=1, on_ack=request.accept)

    def resend_unanswered(self) -> int:
        """Send every unanswered request again with the same event id (an MES retry)."""
        count = 0
        for correlation, request in list(self.requests.items()):
            if not request.answered and request.ce_type == STORE:
                self._publish(correlation, request)
                count += 1
        return count

    # -- load patterns ----------------------------------------------------------------------
    async def closed_loop(self, seconds: float, inflight: int, *, timeout: float = 10.0) -> None:
        """Keep ``inflight`` Stores outstanding for ``seconds`` (a request unanswered for
        ``timeout`` frees its slot and stays unanswered in the ledger)."""
        deadline = time.monotonic() + seconds
        slots: list[Request | None] = [None] * inflight
        while time.monotonic() < deadline:
            now = time.monotonic()
            for n, request in enumerate(slots):
                if request is None or request.answered or now - request.sent > timeout:
                    slots[n] = self.send()
            self._answer_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answer_event.wait(), 0.05)

    async def open_loop(self, seconds: float, rate: float, *, expiry: int | None) -> None:
        """Send Stores at ``rate`` per second for ``seconds``, whatever comes back."""
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - sent
            for _ in range(max(0, min(due, 2000))):
                self.send(expiry=expiry)
            sent += max(0, min(due, 2000))
            await asyncio.sleep(0.005)

    async def settle(self, within: float, *, still_arriving: float = 0.0) -> None:
        """Until every request has an answer, or ``within`` seconds passed.

        With ``still_arriving``, waits on past ``within`` for as long as answers keep
        coming (at most that many more seconds): an overloaded broker delivers answers
        late, and late is not lost. Checked twice a second: scanning 100k requests more
        often would take the CPU this client needs to read the answers.
        """
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.unanswered():
            await asyncio.sleep(0.5)
        if still_arriving:
            # Requests "sent" in an open loop may still wait in this client's own queue
            # for the broker's quota; one that reached the runtime only now is answered
            # only later. Wait until the broker has every request.
            until = time.monotonic() + still_arriving
            while self.client.pending_acks and time.monotonic() < until:
                await asyncio.sleep(0.5)
        last = len(self.requests) - len(self.unanswered())
        until = time.monotonic() + still_arriving
        while time.monotonic() < until:
            await asyncio.sleep(2.0)
            answered = len(self.requests) - len(self.unanswered())
            if answered == last:
                return
            last = answered

    # -- ledger -----------------------------------------------------------------------------
    def unanswered(self) -> list[Request]:
        return [r for r in self.requests.values() if not r.answered]

    def acknowledged(self) -> list[Request]:
        """Stores answered with ReturnStatus 1 (Good): the runtime promised to keep them."""
        return [r for r in self.requests.values() if r.ce_type == STORE and r.status == OK]

    def duplicates(self) -> int:
        """Answers beyond the first of a request, plus Stores processed twice.

        Every Store names a new job, so a Store answered UnableToAcceptJobOrder (16) was
        processed a second time (redelivered after its first processing stored the job)
        and found its own job.
        """
        extra = sum(max(0, len(r.answers) - 1) for r in self.requests.values())
        return extra + self.reprocessed()

    def reprocessed(self) -> int:
        """Stores answered UnableToAcceptJobOrder: processed twice (see ``duplicates``)."""
        return sum(1 for r in self.requests.values() if r.ce_type == STORE and r.status == 16)

    def statuses(self) -> dict[str, int]:
        """How many Stores got each ReturnStatus (``none`` for error answers)."""
        counts: dict[str, int] = {}
        for r in self.requests.values():
            if r.ce_type == STORE and r.answered:
                counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        return counts

    def first_ok_after(self, moment: float) -> float | None:
        """When the first Store sent at or after ``moment`` was answered Good."""
        times = [
            r.answers[0][0]
            for r in self.requests.values()
            if r.sent >= moment and r.status == OK and r.ce_type == STORE
        ]
        return min(times) if times else None

    def error_kinds(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for r in self.requests.values():
            if r.error_kind is not None:
                kinds[r.error_kind] = kinds.get(r.error_kind, 0) + 1
        return kinds

    async def missing_jobs(
        self, job_ids: list[str], *, inflight: int = 64
    ) -> tuple[list[str], list[str]]:
        """The jobs of ``job_ids`` the runtime does not know (their Update is not Good),
        and those it did not answer about even when asked twice (unverified)."""
        missing: list[str] = []
        pending = list(job_ids)
        for _attempt in range(2):
            queries: dict[str, Request] = {}
            retry: list[str] = []
            for n in range(0, len(pending), inflight):
                batch = [
                    self.send(UPDATE, store_body(job), job_id=job)
                    for job in pending[n : n + inflight]
                ]
                for query in batch:
                    queries[query.job_id] = query
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not all(q.answered for q in batch):
                    await asyncio.sleep(0.01)
            for job, query in queries.items():
                if not query.answered:
                    retry.append(job)
                elif query.status != OK:
                    missing.append(job)
            pending = retry
            if not pending:
                break
        return missing, pending


def summary(mes: MesLoad) -> dict[str, Any]:
    """Counts of the ledger for the report."""
    stores = [r for r in mes.requests.values() if r.ce_type == STORE]
    return {
        "requests": len(stores),
        "acknowledged": sum(1 for r in stores if r.status == OK),
        "answered": sum(1 for r in stores if r.answered),
        "unanswered": sum(1 for r in stores if not r.answered),
        "error_kinds": mes.error_kinds(),
        "duplicate_answers": mes.duplicates() - mes.reprocessed(),
        "stores_processed_twice": mes.reprocessed(),
        "return_status": mes.statuses(),
        "mes_reconnects": mes.reconnects,
    }
