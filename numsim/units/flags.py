"""IEEE 754 exception flags of MAC units: the vocabulary and the two rules a float unit chooses.

A unit reports, for every register update (one rounded accumulator add, or one integer register
update), the five flags in SoftFloat's bit order (numsim.fpops: inexact 1, underflow 2, overflow 4,
infinite 8 = divide by zero, never raised by a MAC, invalid 16). Float units compute them with the
standalone operations' rules (csrc/fpops.c: one implementation); an integer register's overflow event
(wrap or saturation) is its overflow flag.

Unit parameters:
- ``tininess``: "after" (default; SoftFloat's 8086-SSE and RISCV specialisations) or "before"
  rounding (ARM-VFPv2): when a nonzero inexact result below the smallest normal raises underflow.
- ``nan_rule``: which NaN an update returns. "default" keeps numsim's units' rule (today's bits): the
  accumulator's NaN quieted, else the default NaN, negative and quiet (binary16 0xFE00, x86's "real
  indefinite"). "x86" (SoftFloat 8086-SSE), "arm" (ARM-VFPv2), "riscv" (RISCV): SoftFloat's
  softfloat_propagateNaN folded over the products' NaN operands in k order, then the accumulator, as
  its mulAdd does for a * b + c.
"""
from __future__ import annotations

import numpy as np

from ..errors import NumsimError
from ..fpops import FLAG_NAMES, flag_names, nan_rule as _fpops_nan_rule, tininess_rule

FLAG_KEYS = tuple(FLAG_NAMES[1 << b] for b in range(5))   # bit order: inexact, underflow, overflow, infinite, invalid
UNIT_NAN_RULES = {"default": 0, "x86": 1, "arm": 2, "riscv": 3}   # ns_unit_nan
TININESS_RULES = ("after", "before")


def unit_nan_rule(rule, arg="nan_rule") -> str:
    """'default' or one of numsim.fpops' SoftFloat rules (aliases such as '8086-sse' accepted)."""
    if isinstance(rule, str) and rule.strip().lower() == "default":
        return "default"
    try:
        return _fpops_nan_rule(rule, arg)
    except NumsimError:
        raise NumsimError(f"{arg}: expected one of {sorted(UNIT_NAN_RULES)} ('default': numsim's units' own rule; "
                          f"the others SoftFloat's 8086-SSE, ARM-VFPv2, RISCV), got {rule!r}") from None


def unit_tininess(rule, arg="tininess") -> str:
    return tininess_rule(rule, arg)


def counts_dict(counts) -> dict:
    """{flag name: count} from 5 counts in bit order."""
    return {k: int(v) for k, v in zip(FLAG_KEYS, counts)}


def count_masks(masks) -> dict:
    """{flag name: how many of these per-update masks raise it}."""
    m = np.asarray(masks, dtype=np.uint8).reshape(-1)
    return {k: int(np.count_nonzero(m & (1 << b))) for b, k in enumerate(FLAG_KEYS)}


__all__ = ["FLAG_KEYS", "UNIT_NAN_RULES", "TININESS_RULES", "unit_nan_rule", "unit_tininess", "counts_dict",
           "count_masks", "flag_names"]
