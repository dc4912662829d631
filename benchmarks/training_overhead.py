"""Forward + backward time of numsim's emulated QuantLinear / QuantConv2d against torch's float32
modules at realistic sizes, as a ratio measured in the same run (goal: <= 5x), and whole training
steps: a transformer LM with every GEMM simulated (op level, goal <= 4x) and a CNN with tpr4 (<= 3x).

    PYTHONPATH=. python benchmarks/training_overhead.py [--threads 1] [--repeat 3] [--quick]

The TPR layers split the dL/dW reduction into FP16 tiles of 8192 rows (recipe key wgrad_split) so
the accumulator cannot overflow at these batch sizes. Also prints where the emulated layer's time goes (quantizers, each GEMM, the odd-phase departure
report) for the TPR recipe, so the ratio can be read against its parts.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import numsim.torch as nt
from numsim import QTensor, get_unit, matmul
from numsim.units import odd_phase_departures
from numsim.quant.pact import pact_quantize
from numsim.quant.sawb import sawb_quantize
from numsim.quant.tpr import tpr


def _time(fn, repeat):
    fn()   # warm-up: numba compiles the statistics kernels on first use, units are cached
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _fwd_bwd(mod, x, G):
    def run():
        mod.zero_grad(set_to_none=True)
        xx = x.detach().requires_grad_(True)
        (mod(xx) * G).sum().backward()
    return run


def bench_layer(name, make_float, make_quant, xshape, repeat):
    torch.manual_seed(0)
    f = make_float()
    x = torch.rand(*xshape)
    with torch.no_grad():
        shape = f(x).shape
    # heavy-tailed like real gradients (magnitudes over several decades), seeded
    rng = np.random.default_rng(1)
    G = torch.from_numpy((rng.standard_normal(shape) * np.exp(rng.uniform(-6, 0, shape)) * 1e-3).astype(np.float32))
    t_float = _time(_fwd_bwd(f, x, G), repeat)
    rows = [(name, "float32 (torch)", t_float, 1.0)]
    for label, cfg in (("tpr (seed 003)", {"mode": "tpr", "act_alpha": 1.0, "wgrad_split": 8192}),
                       ("int8 / PTQ 8b (seed 000)", {"mode": "int", "grad_quantizer": "ptq", "grad_bits": 8})):
        q = make_quant(f, cfg)
        t = _time(_fwd_bwd(q, x, G), repeat)
        rows.append((name, label, t, t / t_float))
    return rows


def tpr_breakdown(m, k, n, repeat, nthreads):
    """The parts of a TPR Linear layer (batch m, k in, n out): quantizers, three GEMMs, departures."""
    rng = np.random.default_rng(0)
    x = rng.random((m, k)).astype(np.float32)
    w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    gy = (rng.standard_normal((m, n)) * 1e-3).astype(np.float32)
    out = {}
    out["PACT + SAWB"] = _time(lambda: (pact_quantize(x, 1.0), sawb_quantize(w, 4, "zero_aligned")), repeat)
    xq, wq = pact_quantize(x, 1.0), sawb_quantize(w, 4, "zero_aligned")
    out["TPR (GradScale + both phases)"] = _time(lambda: tpr(gy), repeat)
    q = tpr(gy)
    fwd = get_unit("int4_int32", a_fmt="uint4")
    out["forward GEMM int4_int32"] = _time(
        lambda: matmul(xq, QTensor(wq.codes.T, wq.fmt, wq.scale), fwd, nthreads=nthreads), repeat)
    dxu = get_unit("int4_fp4r4_fp16")
    out["dL/dX GEMM int4_fp4r4_fp16 even"] = _time(
        lambda: matmul(QTensor(wq.codes.T, wq.fmt, wq.scale), QTensor(q.even.codes.T, q.even.fmt, q.scale), dxu,
                       nthreads=nthreads), repeat)
    dwu = get_unit("int4_fp4r4_fp16", a_fmt="uint4", phase="odd")
    r = matmul(QTensor(xq.codes.T, xq.fmt, xq.scale), q.odd, dwu, nthreads=nthreads)
    out["dL/dW GEMM int4_fp4r4_fp16 odd (incl. report)"] = _time(
        lambda: matmul(QTensor(xq.codes.T, xq.fmt, xq.scale), q.odd, dwu, nthreads=nthreads), repeat)
    even = r.info["even_codes"][0]
    out["  of which: odd-phase departure report"] = _time(lambda: odd_phase_departures(even), repeat)
    return out


def _step(model, x, target):
    def run():
        model.zero_grad(set_to_none=True)
        out = model(x)
        torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1)).backward()
    return run


def bench_models(quick, repeat):
    """Whole training steps (forward, loss, backward; no optimizer): the character transformer LM of
    examples/train_transformer.py with every GEMM through numsim (op-level recipes) and the issue's
    CNN (conv-BN-ReLU x3 + linear, 3x32x32) with tpr4, each against the same model in float32."""
    import warnings

    from numsim.torch.lm import char_lm

    rows = []
    d, layers, ctx, b = (32, 1, 32, 8) if quick else (64, 2, 64, 16)
    vocab = 96
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (b, ctx), generator=g)
    target = torch.randint(0, vocab, (b, ctx), generator=g)
    name = f"char LM d{d} x{layers} layers, context {ctx}, batch {b}"
    f = char_lm(vocab, d, 4, layers, 4 * d, ctx)
    t_float = _time(_step(f, tokens, target), repeat)
    rows.append((name, "float32 (torch)", t_float, 1.0))
    for recipe in ("ops_int8", "ops_fp8", "ops_fp8_attention_int4_weights"):
        q = nt.convert(f, recipe)
        t = _time(_step(q, tokens, target), repeat)
        assert not q.numsim_report.unsimulated()
        rows.append((name, f"{recipe}: every GEMM simulated", t, t / t_float))
    bn = 8 if quick else 32
    torch.manual_seed(0)
    nn = torch.nn
    cnn = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                        nn.Flatten(), nn.Linear(64 * 8 * 8, 10))
    x = torch.rand(bn, 3, 32, 32)
    y = torch.randint(0, 10, (bn,), generator=g)
    name = f"CNN conv-BN-ReLU x3 + linear, 3x32x32, batch {bn}"
    t_float = _time(_step(cnn, x, y), repeat)
    rows.append((name, "float32 (torch)", t_float, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # tpr4 keeps the first and last layers float (seed 003)
        for recipe in ("tpr4", "tpr4_all"):
            q = nt.convert(cnn, {"name": recipe, **{k: v for k, v in nt.RECIPES[recipe].items() if k != "name"},
                                 "default": {"mode": "tpr", "act_alpha": 1.0, "wgrad_split": 8192}})
            t = _time(_step(q, x, y), repeat)
            rows.append((name, recipe, t, t / t_float))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch and numsim threads (same for both)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    nt.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads, user_api="blas")
    except ImportError:
        pass
    if args.quick:
        lin = (64, 256, 256)
        conv = (8, 32, 32, 16)
    else:
        lin = (256, 1024, 1024)      # batch, in, out
        conv = (32, 64, 64, 32)      # batch, c in, c out, H = W (a ResNet stage-1/CIFAR 3x3 conv)
    m, k, n = lin
    rows = bench_layer(f"Linear {k}->{n}, batch {m}", lambda: torch.nn.Linear(k, n),
                       lambda f, cfg: nt.QuantLinear.from_float(f, cfg), (m, k), args.repeat)
    b, c, o, hw = conv
    rows += bench_layer(f"Conv2d 3x3 {c}->{o}, {hw}x{hw}, batch {b}", lambda: torch.nn.Conv2d(c, o, 3, padding=1),
                        lambda f, cfg: nt.QuantConv2d.from_float(f, cfg), (b, c, hw, hw), args.repeat)
    print(f"threads {args.threads}, best of {args.repeat}; forward + backward (dL/dX, dL/dW) of one layer\n")
    print("| layer | module | ms | x float32 |\n|---|---|---:|---:|")
    for name, label, t, ratio in rows:
        print(f"| {name} | {label} | {t * 1e3:.1f} | {ratio:.1f} |")
    print(f"\nWhole training steps (threads {args.threads}, best of {args.repeat})\n")
    print("| model | numerics | ms | x float32 |\n|---|---|---:|---:|")
    for name, label, t, ratio in bench_models(args.quick, args.repeat):
        print(f"| {name} | {label} | {t * 1e3:.1f} | {ratio:.1f} |")
    print(f"\nTPR Linear {k}->{n}, batch {m}: where the time goes\n\n| part | ms |\n|---|---:|")
    for part, t in tpr_breakdown(m, k, n, args.repeat, args.threads).items():
        print(f"| {part} | {t * 1e3:.1f} |")


if __name__ == "__main__":
    main()
