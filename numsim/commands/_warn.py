"""Warnings of the CLI commands: one line each on stderr, `numsim: warning: WHERE: WHAT` (docs/errors.md)."""
from __future__ import annotations

import sys


def warn(where, what):
    print(f"numsim: warning: {where}: {what}", file=sys.stderr)
