"""The `golfcheck` command line: one entry point, subcommands registered by the modules that own them.

Exit codes: 0 success, 1 internal error (or a compliance rule failed, for `check`),
2 bad input (a one-line message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from api.cli import service
from gepa import cli as evaluator_cli
from gepa.compliance import cli as compliance_cli
from gepa.errors import InputError

# Each module's `register(subparsers)` adds its commands. Registering is cheap: the commands that
# need the database or the web stack import them when they run (api.cli.service says why).
COMMAND_MODULES = (evaluator_cli, compliance_cli, service)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="golfcheck",
        description="Verify Parameter Golf submissions: evaluate artifacts, check compliance, run the service.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMAND_MODULES:
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage; 2 means bad input
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        rc = int(func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at interpreter exit
        return rc
    except InputError as exc:
        print(f"golfcheck: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("golfcheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`golfcheck status ID | head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not complain, and exit as `head`'s writers do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback to the user
        if os.environ.get("GOLFCHECK_DEBUG"):
            raise
        print(f"golfcheck: internal error: {type(exc).__name__}: {exc} (set GOLFCHECK_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
