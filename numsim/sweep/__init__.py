"""Design-space sweeps: many MAC-unit variants over real tensors, with error metrics per variant.

A sweep is plain data (a dict, usually read from TOML, see docs/sweeps.md):

    [sweep]   name, seed, unit (a preset name), nthreads (kernel threads per variant)
    [fixed]   unit / quantizer / format-field overrides applied to every variant
    [grid]    parameter -> list of values; the variants are the cartesian product
    [[variants]]  an explicit list of parameter tables (crossed with [grid] when both are given)
    [quant]   the quantizer of both operands; [quant.a] / [quant.b] override per operand
    [[workload]]  the GEMMs: npy / npz files, the sklearn-digits model, random tensors
    [report]  x / series / metric of the plots, gemm of the summary, min_sqnr_db

Parameter names: a field of the unit's dataclass (`chunk`, `order`, `acc_fmt`, `acc_rounding`, ...);
`FIELD.SUB` for a field of a format-valued parameter (`acc_fmt.man_bits` builds a FloatFormat from
the unit's accumulator format with that mantissa width); `quant.KEY` / `quant.a.KEY` / `quant.b.KEY`
for the quantizer (method, rounding, granularity, percentile, scale, seed; `method =
"numsim.quant.NAME"` runs a numsim.quant quantizer with the keyword arguments `quant.a.args.NAME`).

Each variant runs every GEMM of every workload: its operands are quantized into the unit's operand
formats, multiplied by numsim's GEMM through the unit, and compared with (1) a float64 reference of
the same quantized operands (the datapath's own error) and (2) the float32 product of the
unquantized operands (datapath + quantization error). Rows are per (variant, GEMM), plus a pooled
row `gemm = "all"` per variant when a sweep has more than one GEMM.

Execution: one variant a task on Dask -- the local threaded scheduler by default (the C kernels
release the GIL), a distributed cluster when a scheduler address is given. Each finished variant is
written to OUT/variants/<id>.json at once; a re-run skips the variants already there (resume). The
id hashes everything that determines the variant's numbers, so a changed sweep never reuses stale
results. Quantizer seeds come from the sweep seed and the GEMM's position, so the table is the same
whatever the worker count (only the timing columns differ).

Modules, by job: spec (the description, validated into a Plan), workloads (the GEMMs), quantize
(operands through numsim.quant), metrics (errors against the references), run (execution, Dask
optional), report (tables and plots, matplotlib optional).
"""
from .metrics import METRICS, TIMING_COLUMNS, deterministic_columns
from .run import SweepResult, run_sweep
from .spec import Plan, Variant, load_spec, plan_sweep

__all__ = ["METRICS", "TIMING_COLUMNS", "Plan", "SweepResult", "Variant", "deterministic_columns", "load_spec",
           "plan_sweep", "run_sweep"]
