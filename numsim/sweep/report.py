"""Sweep reports: results.csv (+ parquet with pyarrow), summary.md, and plots (matplotlib optional)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .spec import _canon

def _fmt_cell(v):
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}"
    return str(v)


def write_reports(plan, rows, out, failures=()):
    """results.csv (+ results.parquet with pyarrow), summary.md, and plots (with matplotlib)."""
    import csv

    out = Path(out)
    files = {}
    if not rows:       # nothing finished (yet): only the summary, with the failures
        files["summary"] = _write_summary(plan, rows, out, failures)
        return files
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    p = out / "results.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    files["csv"] = p
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        data = {}
        for k in cols:
            vals = [r.get(k) for r in rows]
            if any(isinstance(v, str) for v in vals) and not all(isinstance(v, str) for v in vals):
                vals = [None if v is None else str(v) for v in vals]
            data[k] = vals
        pq.write_table(pa.table(data), out / "results.parquet")
        files["parquet"] = out / "results.parquet"
    files["summary"] = _write_summary(plan, rows, out, failures)
    files.update(_write_plots(plan, rows, out))
    return files


def _summary_rows(plan, rows):
    gemm = plan.report.get("gemm")
    names = []
    for r in rows:
        if r["gemm"] not in names:
            names.append(r["gemm"])
    if gemm is None:
        gemm = "all" if "all" in names else (names[0] if names else None)
    return gemm, [r for r in rows if r["gemm"] == gemm]


def _write_summary(plan, rows, out, failures):
    gemm, sel = _summary_rows(plan, rows)
    lines = [f"# Sweep `{plan.name}`", "",
             f"Base unit `{plan.unit_name}`; {len(plan.variants)} variants, "
             f"{len({r['variant'] for r in rows})} finished; GEMMs: "
             + ", ".join(f"`{g.name}` {g.shape[0]}x{g.shape[1]}x{g.shape[2]}" for g in plan.workloads.gemms) + ".",
             f"Seed {plan.seed}. Errors are of the unit's output against the float64 product of the same quantized "
             f"operands (the datapath's error); `f32_sqnr_db` is against the float32 product of the unquantized "
             f"operands (datapath + quantization).", ""]
    if plan.fixed:
        lines += ["Fixed: " + ", ".join(f"`{k} = {v}`" for k, v in plan.fixed.items()), ""]
    metric_cols = ["sqnr_db", "bias", "rms_rel_err", "max_rel_err", "overflows", "saturated", "f32_sqnr_db",
                   "mmac_per_s"]
    head = ["#"] + plan.param_keys + metric_cols
    if sel:
        lines += [f"Rows for GEMM `{gemm}`:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    else:
        lines.append("No variant has finished yet.")
    for r in sel:
        cells = [str(r["variant"])] + [_fmt_cell(r.get(k, "")) for k in plan.param_keys] + \
                [_fmt_cell(r.get(k, "")) for k in metric_cols]
        lines.append("| " + " | ".join(cells) + " |")
    target = plan.report.get("min_sqnr_db")
    if target is not None and plan.param_keys:
        x = plan.report.get("x", plan.param_keys[0])
        series = plan.report.get("series", next((k for k in plan.param_keys if k != x), None))
        lines += ["", f"## Smallest `{x}` with SQNR >= {target} dB (GEMM `{gemm}`)", ""]
        groups = {}
        for r in sel:
            groups.setdefault(r.get(series) if series else "", []).append(r)
        for sv, rs in groups.items():
            ok = sorted((r[x] for r in rs if r["sqnr_db"] >= target), key=lambda v: (str(type(v)), v))
            label = f"`{series} = {sv}`" if series else "all variants"
            lines.append(f"- {label}: " + (f"`{x} = {ok[0]}`" if ok else "none of the swept values"))
    if failures:
        lines += ["", f"## Failed variants ({len(failures)}; re-run to retry them)", ""]
        for f in failures:
            lines.append(f"- variant {f['variant']} `{_canon(f['params'])}`: {f['error']}")
    p = out / "summary.md"
    p.write_text("\n".join(lines) + "\n")
    return p


def _write_plots(plan, rows, out):
    """One PNG per metric: the metric against report.x, one line per value of report.series."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    keys = plan.param_keys
    if not keys:
        return {}
    x = plan.report.get("x", keys[0])
    series = plan.report.get("series", next((k for k in keys if k != x), None))
    metrics = plan.report.get("metric", ["sqnr_db"])
    if isinstance(metrics, str):
        metrics = [metrics]
    gemm, sel = _summary_rows(plan, rows)
    others = [k for k in keys if k not in (x, series)]
    files = {}
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        groups = {}
        for r in sel:
            key = (r.get(series) if series else None,) + tuple(r.get(k) for k in others)
            groups.setdefault(key, []).append(r)
        for key, rs in groups.items():
            pts = sorted((r[x], r[metric]) for r in rs if isinstance(r.get(metric), (int, float)))
            if not pts:
                continue
            xs, ys = zip(*pts)
            ys = [y if math.isfinite(y) else float("nan") for y in ys]
            label = ", ".join(f"{n}={v}" for n, v in zip(([series] if series else []) + others,
                                                          key if series else key[1:]))
            ax.plot(xs, ys, marker="o", label=label or None)
        if metric == "sqnr_db":
            # The error the operand quantization alone brings: the accumulator needs little more headroom.
            q = [r["f32_sqnr_db"] for r in sel if math.isfinite(r.get("f32_sqnr_db", math.nan))]
            if q:
                ax.axhline(float(np.median(q)), color="grey", linestyle="--", linewidth=1,
                           label="SQNR vs unquantized float32 (median)")
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.set_title(f"{plan.name}: {metric} ({gemm})")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        p = out / f"{metric}_vs_{x.replace('.', '_')}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        files[f"plot_{metric}"] = p
    return files
