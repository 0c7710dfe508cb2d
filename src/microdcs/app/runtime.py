"""One wired replica: what the runner serves and what an operator's tooling inspects.

Built by :func:`microdcs.app.assembly.open_runtime` in dependency order; every field is
final once the runtime is handed out (nothing is attached to it afterwards).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from microdcs.alarms.manager import AlarmManager
from microdcs.app.application import Application
from microdcs.app.binder import Binder
from microdcs.app.config import AppConfig
from microdcs.app.telemetry.metrics import Metrics
from microdcs.core.tracing import Tracing
from microdcs.jobs.processor import JobManagementProcessor
from microdcs.plantdata.table import CurrentValueTable
from microdcs.sfc import Predicate
from microdcs.sfc.engine.engine import SfcEngine
from microdcs.storage.redis import RedisStore
from microdcs.transports.mqtt.handler import MqttHandler
from microdcs.transports.msgpack_rpc import MessagePackRpcHandler


@dataclass(frozen=True, slots=True)
class Runtime:
    """The parts of one replica, wired."""

    config: AppConfig
    app: Application
    store: RedisStore
    mqtt: MqttHandler
    rpc: MessagePackRpcHandler | None
    metrics: Metrics
    tracing: Tracing
    #: The job management processor (northbound, ``config.jobs_prefix``).
    jobs: JobManagementProcessor
    #: The SFC engine of this replica (its task runs only where the engine is enabled).
    sfc_engine: SfcEngine
    #: Condition predicates recipes may name (the engine evaluates them).
    predicates: Mapping[str, Predicate]
    #: What processor factories were handed (bind a processor, add a task).
    binder: Binder
    #: Alarm evaluation, actions and reading (an AlarmReader and AlarmActions).
    alarms: AlarmManager
    #: Plant data's current value table (a TagReader; ``add_listener`` for changes).
    plantdata: CurrentValueTable
