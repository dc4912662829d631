"""Error metrics of a unit's GEMM output: the float64 reference product of the quantized operands,
sufficient statistics per GEMM (poolable over GEMMs), and the metrics from them."""
from __future__ import annotations

import math

import numpy as np

from ..events import saturated_count, suspicious_counts, suspicious_text  # noqa: F401  (the sweep's columns)

# Columns that measure time: everything else in the table is deterministic.
TIMING_COLUMNS = ("seconds", "mmac_per_s")
METRICS = ("bias", "rms_err", "rms_rel_err", "max_abs_err", "max_rel_err", "sqnr_db")
# Every numeric column a plot or report.metric may name.
PLOT_COLUMNS = METRICS + tuple(f"f32_{m}" for m in METRICS) + (
    "overflows", "saturated", "nonfinite", "a_clipped", "b_clipped") + TIMING_COLUMNS


def _split_scale(q, op):
    """(decoded codes times the scale factors that vary along K, the scale along M or N) of an operand.
    K-dependent factors are powers of two (alignment or per-sample shifts) so they are applied exactly;
    the M / N scales multiply the product afterwards, as numsim.matmul applies them."""
    red_axis = 1 if op == "a" else 0
    v = q.decode_codes()
    outer = 1.0
    if q.axis is None:
        outer = float(q.scale)
        if q.sample_shift is not None:
            f = np.ldexp(1.0, -q.sample_shift.astype(np.int64))
            v = v * (f.reshape(1, -1) if red_axis == 1 else f.reshape(-1, 1))
    elif q.axis == red_axis:
        v = v * (q.scale.reshape(1, -1) if red_axis == 1 else q.scale.reshape(-1, 1))
    else:
        outer = q.scale
    return v, outer


def reference_product(qa, qb):
    """The float64 reference of two quantized operands: their exact products summed in float64
    (exact whenever the partial sums fit 53 bits), times the output scale."""
    va, sa = _split_scale(qa, "a")
    vb, sb = _split_scale(qb, "b")
    outer = np.asarray(sa, dtype=np.float64).reshape(-1, 1) * np.asarray(sb, dtype=np.float64).reshape(1, -1)
    return _ref_matmul(va, vb) * outer


def _ref_matmul(a, b):
    """float64 a @ b by numpy reductions (not BLAS): the same bits whatever the machine's thread count."""
    out = np.empty((a.shape[0], b.shape[1]))
    rows = max(1, (1 << 22) // max(1, a.shape[1] * b.shape[1]))
    for s in range(0, a.shape[0], rows):
        out[s:s + rows] = np.einsum("mk,kn->mn", a[s:s + rows], b, optimize=False)
    return out


def error_sums(out, ref):
    """Sufficient statistics of out - ref (float64 arrays of one shape), for per-GEMM and pooled metrics."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    e = out - ref
    finite = np.isfinite(e)
    ef = np.where(finite, e, 0.0)
    nz = ref != 0
    rel = np.abs(ef[nz & finite]) / np.abs(ref[nz & finite])
    return {"n": int(e.size), "nonfinite": int(e.size - finite.sum()), "sum_e": float(ef.sum()),
            "sum_e2": float((ef * ef).sum()), "sum_r2": float((ref * ref).sum()),
            "max_abs_e": float(np.abs(ef).max()) if e.size else 0.0,
            "max_rel_e": float(rel.max()) if rel.size else 0.0,
            "exact_zero_miss": int(np.count_nonzero((~nz) & (ef != 0)))}


def metrics_from_sums(s):
    """bias, RMS error (absolute and relative to the reference's RMS), max errors and SQNR (dB).
    Non-finite outputs (inf/NaN accumulators) make every error metric infinite / SQNR -inf."""
    n = max(s["n"], 1)
    if s["nonfinite"]:
        return {"bias": float("nan"), "rms_err": float("inf"), "rms_rel_err": float("inf"),
                "max_abs_err": float("inf"), "max_rel_err": float("inf"), "sqnr_db": float("-inf")}
    rms_r = math.sqrt(s["sum_r2"] / n)
    rms_e = math.sqrt(s["sum_e2"] / n)
    max_rel = float("inf") if s["exact_zero_miss"] else s["max_rel_e"]
    if s["sum_e2"] == 0:
        sqnr = float("inf")
    elif s["sum_r2"] == 0:
        sqnr = float("-inf")
    else:
        sqnr = 10.0 * math.log10(s["sum_r2"] / s["sum_e2"])
    return {"bias": s["sum_e"] / n, "rms_err": rms_e, "rms_rel_err": rms_e / rms_r if rms_r > 0 else
            (0.0 if rms_e == 0 else float("inf")), "max_abs_err": s["max_abs_e"], "max_rel_err": max_rel,
            "sqnr_db": sqnr}


def pool_sums(sums):
    out = {"n": 0, "nonfinite": 0, "sum_e": 0.0, "sum_e2": 0.0, "sum_r2": 0.0, "max_abs_e": 0.0, "max_rel_e": 0.0,
           "exact_zero_miss": 0}
    for s in sums:
        for k in ("n", "nonfinite", "sum_e", "sum_e2", "sum_r2", "exact_zero_miss"):
            out[k] += s[k]
        out["max_abs_e"] = max(out["max_abs_e"], s["max_abs_e"])
        out["max_rel_e"] = max(out["max_rel_e"], s["max_rel_e"])
    return out


def deterministic_columns(rows):
    """The rows without the timing columns (what must not depend on the worker count)."""
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]
