"""Command line of ``microdcs simulate-equipment``.

It connects like the runtime: broker address, user name and password, and TLS come from
the same ``APP_MQTT_*`` settings; the topic prefix defaults to APP_EQUIPMENT_TOPIC_PREFIX.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = commands.add_parser(
        "simulate-equipment",
        help="run an equipment simulator that answers commands over MQTT",
    )
    sim.add_argument("--delay-ms", type=float, default=100.0, help="answer delay per command")
    sim.add_argument("--fail-ratio", type=float, default=0.0, help="share of failed commands")
    sim.add_argument(
        "--emit",
        action="append",
        default=[],
        metavar="TYPE:SECONDS",
        help="emit an event of TYPE every SECONDS on each known scope (repeatable)",
    )
    sim.add_argument("--scope", action="append", default=[], help="a scope to emit events on")
    sim.add_argument("--prefix", default=None, help="topic prefix (APP_EQUIPMENT_TOPIC_PREFIX)")
    sim.add_argument("--client-id", default=None, help="MQTT client id")
    sim.add_argument("--seed", type=int, default=None, help="random seed for failures")
    sim.add_argument("--report", type=Path, default=None, help="write the report here at exit")
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from microdcs.app.config import load_config
    from microdcs.app.runner import configure_logging, run_event_loop
    from microdcs.app.simulator import Emission, EquipmentSimulator, SimulatorSettings
    from microdcs.core.errors import ConfigurationError

    try:
        config = load_config(os.environ)
        emissions = tuple(Emission.parse(text) for text in args.emit)
    except (ConfigurationError, ValueError) as exc:
        print(f"microdcs simulate-equipment: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    settings = SimulatorSettings(
        mqtt=config.mqtt,  # address, login and TLS as the runtime's (APP_MQTT_*)
        prefix=args.prefix or config.equipment_prefix,
        scope_levels=config.scope_levels,
        delay=args.delay_ms / 1000,
        fail_ratio=args.fail_ratio,
        scopes=tuple(args.scope),
        emissions=emissions,
        seed=args.seed,
        report_file=args.report,
        **({"client_id": args.client_id} if args.client_id else {}),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await EquipmentSimulator(settings).run(stop)

    logging.getLogger(__name__).info("equipment simulator on %s", settings.prefix)
    run_event_loop(main())
    return 0
