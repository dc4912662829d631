"""Record TFLite's fully-connected outputs for numsim's output-stage checks and measure how the presets differ.

    python tools/record_runtimes.py [--out tests/data/runtimes] [--seeds 8] [--size 256]

Needs tensorflow (the tflite extra) and onnxruntime + onnx (the test extra). Writes
- tflite_fc.npz: the cases of numsim.verify.runtimes.cases(seed=0) and TFLite 2.x's outputs with its
  reference, optimized and XNNPACK kernels (tests/test_runtime_stages.py replays them without tensorflow);
- record.json: the runtime versions, each runtime's mismatches against its preset over --seeds seeds of
  cases (all 0 when the presets are right), and the share of outputs on which each pair of presets
  differs, on realistic layers (--size cubed, scales from the data) and on tie-heavy cases.
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
from pathlib import Path

import numpy as np

from numsim.verify import runtimes as rt

PRESET_OF = {"onnxruntime": "onnxruntime", "onnxruntime_b_input": "onnxruntime",
             "tflite_reference": "tflite_reference", "tflite_optimized": "tflite_optimized",
             "tflite_xnnpack": "xnnpack"}
COMPARED = ["gemmlowp", "tflite_reference", "tflite_optimized", "ruy", "xnnpack", "xnnpack_rndnu"]


def realistic_case(rng, size, dtype, per_channel):
    """A layer as a post-training quantizer makes it: Gaussian weights and ReLU-ish activations,
    max-abs scales (per output channel when asked), the output scale from the float result's range."""
    signed = dtype == np.int8
    x = np.abs(rng.standard_normal((size, size))) * rng.uniform(0.5, 3)
    w = rng.standard_normal((size, size)) * rng.uniform(0.02, 0.2, size)
    if signed:
        sa, za = float(np.float32(x.max() / 127)), 0
        qa = np.clip(np.round(x / sa), -128, 127)
    else:
        sa, za = float(np.float32(x.max() / 255)), 0
        qa = np.clip(np.round(x / sa), 0, 255)
    if per_channel:
        sb = (np.abs(w).max(axis=0) / 127).astype(np.float32)
    else:
        sb = float(np.float32(np.abs(w).max() / 127))
    zb = 0 if signed else 128
    qb = np.clip(np.round(w / sb), -127, 127) + zb
    y = (qa - za) @ (qb - zb) * (sa * np.asarray(sb, np.float64))
    lo, hi = np.percentile(y, [0.1, 99.9])
    if signed:
        so = float(np.float32(max(abs(lo), abs(hi)) / 127))
        zo = 0
    else:
        so = float(np.float32((hi - lo) / 255))
        zo = int(np.clip(round(-lo / so), 0, 255))
    return dict(A=qa.astype(dtype), B=qb.astype(dtype), dtype=dtype, per_channel=per_channel, kind="realistic",
                a_scale=sa, a_zero_point=za, b_scale=sb, b_zero_point=zb, out_scale=so, out_zero_point=zo)


def differences(cases):
    """{(p, q): share of outputs on which presets p and q differ} over the cases (all differ by one)."""
    outs = [{p: rt.numsim_outputs(p, c) for p in COMPARED} for c in cases]
    total = sum(o[COMPARED[0]].size for o in outs)
    res = {}
    for p, q in itertools.combinations(COMPARED, 2):
        d = sum(int(np.count_nonzero(o[p] != o[q])) for o in outs)
        worst = max(int(np.abs(o[p] - o[q]).max()) for o in outs)
        res[f"{p} vs {q}"] = {"share": d / total, "max_abs": worst}
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/data/runtimes")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    import onnxruntime
    import tensorflow as tf

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    cases = rt.cases(seed=0)
    arrays["n_cases"] = np.array(len(cases))
    for i, c in enumerate(cases):
        p = f"c{i}_"
        for key in ("A", "B", "per_channel", "kind", "a_scale", "a_zero_point", "b_scale", "b_zero_point",
                    "out_scale", "out_zero_point"):
            arrays[p + key] = np.asarray(c[key])
        if rt.tflite_supports(c):
            for runtime in ("tflite_reference", "tflite_optimized", "tflite_xnnpack"):
                y = rt.runtime_outputs(runtime, c)
                arrays[p + runtime] = y.astype(c["dtype"])
    np.savez_compressed(out / "tflite_fc.npz", **arrays)

    mismatches = {r: {"outputs": 0, "mismatches": 0} for r in PRESET_OF}
    for seed in range(args.seeds):
        for c in rt.cases(seed=100 + seed) + rt.cases(seed=200 + seed, M=4, K=257, N=19):
            for runtime, preset in PRESET_OF.items():
                if runtime.startswith("tflite") and not rt.tflite_supports(c):
                    continue
                y = rt.runtime_outputs(runtime, c)
                mismatches[runtime]["outputs"] += int(y.size)
                mismatches[runtime]["mismatches"] += int(np.count_nonzero(rt.numsim_outputs(preset, c) != y))

    rng = np.random.default_rng(2026)
    realistic = [realistic_case(rng, args.size, dt, pc) for dt in (np.int8, np.uint8) for pc in (False, True)
                 for _ in range(2)]
    ties = [c for s in range(args.seeds) for c in rt.cases(seed=300 + s, M=32, K=64, N=32) if c["kind"] == "ties"]
    record = {
        "machine": platform.processor() or platform.machine(),
        "versions": {"tensorflow": tf.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "runtime_vs_preset": mismatches,
        "preset_differences": {"realistic": differences(realistic), "ties": differences(ties)},
        "sizes": {"realistic": f"{len(realistic)} layers of {args.size}^3", "ties": f"{len(ties)} cases of 32x64x32"},
    }
    (out / "record.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
