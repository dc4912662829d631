"""The `numsim` command. Each subcommand lives in numsim/commands/<name>.py and defines
`register(subparsers)`; this file discovers them and owns the error rules of every command
(docs/errors.md):

- bad input (a usage error, a NumsimError, an OSError or ValueError while reading arguments and
  files): one line `numsim: error: ...` on stderr, exit status 2, no traceback;
- a closed output pipe (`numsim formats fp16 | head`): silent, exit status 141 (128 + SIGPIPE, what
  a shell reports for a command its reader stopped);
- Ctrl-C: `numsim: interrupted`, exit status 130;
- anything else is a bug in numsim: the traceback, then one line saying so, exit status 3.
  `NUMSIM_TRACEBACK=1` shows the traceback of handled errors too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from .errors import NumsimError

EXIT_BAD_INPUT = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141


class _UsageError(Exception):
    """argparse's error, raised instead of printing usage and exiting (main prints one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the usage block and the message; numsim prints one line naming the command
        sub = self.prog.partition(" ")[2]       # "numsim demo" -> "demo"
        raise _UsageError(f"{sub + ': ' if sub else ''}{message} (see {self.prog} --help)")


def build_parser():
    parser = _Parser(prog="numsim", description="Bit-accurate low-precision arithmetic simulator")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        mod.register(sub)
    return parser


def _stdout_closed():
    # The reader went away: send the rest of stdout (and the interpreter's final flush) nowhere.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_PIPE_CLOSED


def _one_line(e):
    msg = " ".join(str(e).split()) or type(e).__name__
    if not isinstance(e, NumsimError) and isinstance(e, OSError) and e.filename is not None \
            and str(e.filename) not in msg:
        msg = f"{e.filename}: {msg}"
    return msg


def main(argv=None):
    show_tb = os.environ.get("NUMSIM_TRACEBACK", "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            raise _UsageError("a COMMAND is needed (see numsim --help)")
        rc = args.func(args)
        sys.stdout.flush()          # a closed pipe shows here, inside the handler, not at exit
        return 0 if rc is None else int(rc)
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        print("numsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (_UsageError, NumsimError, OSError, ValueError) as e:
        if show_tb:
            import traceback

            traceback.print_exc()
        kind = "" if isinstance(e, (_UsageError, NumsimError, OSError)) else f"{type(e).__name__}: "
        print(f"numsim: error: {kind}{_one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # noqa: BLE001 -- a bug: keep the traceback, say what it is
        import traceback

        traceback.print_exc()
        print(f"numsim: internal error ({type(e).__name__}): this is a bug in numsim; please report it with the "
              f"traceback above", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
