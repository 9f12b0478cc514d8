"""The `golfcheck` command line: one entry point, subcommands registered by the modules that own them.

Exit codes: 0 success, 1 internal error (or a compliance rule failed, for `check`),
2 bad input (a one-line message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from gepa.errors import InputError

# Each entry: module path whose `register(subparsers)` adds its commands. Imported lazily so that
# `golfcheck evaluate` does not pay for loading the web stack.
COMMAND_MODULES = (
    "gepa.cli",
    "gepa.compliance.cli",
    "api.cli.service",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="golfcheck",
        description="Verify Parameter Golf submissions: evaluate artifacts, check compliance, run the service.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)  # safe: names from the fixed COMMAND_MODULES list
        except ModuleNotFoundError as exc:
            if exc.name and mod_name.startswith(exc.name):  # that command group is not built yet
                continue
            raise
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
