"""The ``microdcs`` command line: ``run``, ``dataclassgen``, and friends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _cmd_run(args: argparse.Namespace) -> int:
    from microdcs.app.runner import run_from_environment

    return run_from_environment(processor_specs=args.processor)


def _cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from microdcs.app.scaffold import ScaffoldError, init_project, package_name

    directory = Path(args.directory)
    try:
        written = init_project(directory)
    except ScaffoldError as exc:
        print(f"microdcs init: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    package = package_name(directory)
    print(
        f"\nnext: cd {directory} && make test   (a .venv with microdcs; needs mosquitto and "
        f"redis-server installed)\nthen edit schemas/ and {package}/processor.py; make run "
        "serves it"
    )
    return 0


def _cmd_asyncapi(args: argparse.Namespace) -> int:
    import asyncio
    import os
    from pathlib import Path

    import orjson

    from microdcs.app.asyncapi import asyncapi_for_config
    from microdcs.app.config import load_config
    from microdcs.app.runner import load_factory
    from microdcs.core.errors import ConfigurationError

    try:
        config = load_config(os.environ)
        factories = [load_factory(spec) for spec in args.processor or ()]
        schemas = [Path(directory) for directory in args.schemas or ()]
        document = asyncio.run(asyncapi_for_config(config, factories, schemas))
    except ConfigurationError as exc:
        print(f"microdcs asyncapi: configuration error: {exc}", file=sys.stderr)
        return 2
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    if args.output == "-":
        sys.stdout.buffer.write(text)
    else:
        Path(args.output).write_bytes(text)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from microdcs.app.demo import run_demo

    return run_demo(Path(args.workdir))


def _cmd_hash_password(args: argparse.Namespace) -> int:
    """A password hash for APP_WEB_USERS_FILE: from stdin, or asked twice on a terminal
    (never an argument: it would stay in the shell history and the process list)."""
    import getpass

    from microdcs.web.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("microdcs hash-password: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("microdcs hash-password: an empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _cmd_config_docs(args: argparse.Namespace) -> int:
    from microdcs.app.configdocs import render

    sys.stdout.write(render())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="microdcs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the runtime from APP_* environment variables")
    run.add_argument(
        "--processor",
        action="append",
        default=None,
        metavar="MODULE:FACTORY",
        help="bind an extra processor factory (repeatable); see README",
    )
    run.set_defaults(handler=_cmd_run)

    init = commands.add_parser(
        "init", help="create a processor project (schema, processor, test, Makefile)"
    )
    init.add_argument("directory", nargs="?", default=".", help="a new or empty directory")
    init.set_defaults(handler=_cmd_init)

    asyncapi = commands.add_parser(
        "asyncapi", help="print the AsyncAPI 3.0 document of what `run` would bind (JSON)"
    )
    asyncapi.add_argument(
        "--processor",
        action="append",
        default=None,
        metavar="MODULE:FACTORY",
        help="as for run: a processor factory bound besides the built-in ones (repeatable)",
    )
    asyncapi.add_argument(
        "--schemas",
        action="append",
        default=None,
        metavar="DIR",
        help="where the models' JSON Schemas are, by $id (repeatable; ./schemas is searched)",
    )
    asyncapi.add_argument("-o", "--output", default="-", help="a file instead of stdout")
    asyncapi.set_defaults(handler=_cmd_asyncapi)

    from microdcs.codegen.command import add_parser as add_dataclassgen

    add_dataclassgen(commands)
    demo = commands.add_parser(
        "demo", help="local broker + Redis + runtime + demo MES client (make run)"
    )
    demo.add_argument("--workdir", default=".run", help="where servers keep config and data")
    demo.set_defaults(handler=_cmd_demo)

    from microdcs.app.simcli import add_parser as add_simulator

    add_simulator(commands)

    hashing = commands.add_parser(
        "hash-password", help="print a password hash for APP_WEB_USERS_FILE (from stdin)"
    )
    hashing.set_defaults(handler=_cmd_hash_password)

    docs = commands.add_parser("config-docs", help="print the configuration reference (Markdown)")
    docs.set_defaults(handler=_cmd_config_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
