"""What makes a GEMM's result suspect: non-finite outputs, outputs saturated at the accumulator's
range ends, the kernel's overflow events. One counting rule for numsim.matmul / conv2d (warn=True),
the sweep's columns and the demo / vectors commands' warnings."""
from __future__ import annotations

import numpy as np


def saturated_count(acc_values, acc_fmt):
    """Outputs stuck at the accumulator's range ends (largest finite magnitude, or inf/NaN)."""
    acc_values = np.asarray(acc_values)
    if acc_fmt.kind == "int":
        return int(np.count_nonzero((acc_values == acc_fmt.max_value) | (acc_values == acc_fmt.min_value)))
    return int(np.count_nonzero(~np.isfinite(acc_values) | (np.abs(acc_values) >= acc_fmt.max_finite)))


def suspicious_counts(acc_values, acc_fmt, overflow_count=0):
    """What makes a GEMM's result suspect: {"outputs", "nonfinite" (inf/NaN), "saturated" (at the
    accumulator's range ends, non-finite included), "overflows" (the kernel's overflow events)}."""
    acc_values = np.asarray(acc_values)
    nonfinite = 0 if acc_fmt.kind == "int" else int(acc_values.size - np.count_nonzero(np.isfinite(acc_values)))
    return {"outputs": int(acc_values.size), "nonfinite": nonfinite,
            "saturated": saturated_count(acc_values, acc_fmt), "overflows": int(overflow_count)}


def suspicious_text(c):
    """One phrase for suspicious_counts' dict, or None when nothing is suspect."""
    parts = []
    if c["nonfinite"]:
        parts.append(f"{c['nonfinite']} of {c['outputs']} outputs are inf/NaN")
    finite_sat = c["saturated"] - c["nonfinite"]
    if finite_sat:
        parts.append(f"{finite_sat} of {c['outputs']} outputs at the accumulator's range ends")
    if c["overflows"]:
        parts.append(f"{c['overflows']} overflow events")
    return "; ".join(parts) or None


def output_stage_text(c):
    """One phrase for a runtime output stage's events ({"outputs", "clamped", "wraps"}), or None."""
    parts = []
    if c.get("clamped"):
        parts.append(f"{c['clamped']} of {c['outputs']} outputs clamped by the output stage")
    if c.get("wraps"):
        parts.append(f"{c['wraps']} int32 wraps in the output stage")
    return "; ".join(parts) or None
