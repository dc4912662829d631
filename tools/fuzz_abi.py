"""Fuzz numsim's C ABI through the Python API: random shapes, strides, dtypes, non-contiguous views,
formats, units, rounding modes and parameters, valid and invalid.

Each call's outcome must be one of: a result, or a NumsimError. Any other exception is a finding.
Calls the generator made invalid on purpose in their structure (dtype, shape, code range, names,
parameter types) must raise NumsimError before any kernel runs: a spy wrapped around the cffi `lib`
counts kernel calls. Value errors found while computing (NaN into a format without NaN, overflow
under overflow='error') are reported by the kernels' status and raised after them: that is allowed.
Valid calls on non-contiguous or strided inputs must give the bits of the same call on contiguous
copies. Run it under the sanitizer build (tools/sanitize.sh) to check memory safety as well.

Usage: python tools/fuzz_abi.py [--calls N] [--seed S] [--json OUT]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import traceback

try:                                   # an installed numsim, or the one the importer already has
    import numsim  # noqa: F401
except ImportError:                    # run as a script from a built checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import numsim  # noqa: E402
from numsim import codec, units as mac  # noqa: E402
from numsim.units._c import CUnit  # noqa: E402
from numsim import gemm as G  # noqa: E402
from numsim.errors import NumsimError  # noqa: E402
from numsim.formats import REGISTRY  # noqa: E402
from numsim.units import get_unit, unit_names  # noqa: E402

MODES = ["nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos", "stochastic"]
BAD_NAMES = ["fp5", "", "NEAREST", "int33", None, 3, "toward-nowhere"]


def _pick(rng, seq):
    """A random element as a plain Python object (numpy's choice gives numpy scalars)."""
    seq = list(seq)
    return seq[int(rng.integers(0, len(seq)))]


class KernelSpy:
    """Stands in for the cffi `lib` in numsim's modules and counts calls of ns_* kernels."""

    def __init__(self, lib):
        self._lib = lib
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self._lib, name)
        if name.startswith("ns_") and callable(attr):
            def counted(*a, **k):
                self.calls += 1
                return attr(*a, **k)
            return counted
        return attr


SPIED = ["numsim.codec", "numsim.units._c", "numsim.units.output_stage", "numsim.units.int_mac",
         "numsim.units.sample_shift", "numsim.units.float_mac", "numsim.units.fused_adder", "numsim.units.int_mma",
         "numsim.kernels.float_exact", "numsim.kernels.int_lanes"]


def install_spy():
    import importlib

    spy = KernelSpy(codec.lib)
    for name in SPIED:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "lib"):
            mod.lib = spy
    return spy


# Issues already reported (each has a strict-xfail test in tests/test_fuzz.py): counted, not findings.
KNOWN = {
    "h100 step: out-of-range state raises OverflowError":
        lambda label, f: label.startswith("h100_") and label.endswith(".step") and "OverflowError" in f,
    "h100 gemm: nthreads checked after the operands are decoded (before the GEMM kernel)":
        lambda label, f: label.startswith("h100_") and "rejected only after" in f,
}


def known_issue(label, finding):
    for name, match in KNOWN.items():
        if match(label, finding):
            return name
    return None


class Structural(Exception):
    """Marker: the generator made this call invalid in its structure (expected: NumsimError before C)."""


def strided_variants(a, rng):
    """The same values through a random non-contiguous view (or the array itself)."""
    k = rng.integers(0, 5)
    if a.ndim == 0 or a.size == 0 or k == 0:
        return a, "contiguous"
    if k == 1:                                   # every other element of a twice-as-large buffer
        big = np.empty(tuple(s * 2 for s in a.shape), dtype=a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)], "step-2 slice"
    if k == 2:                                   # negative strides
        rev = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])
        return rev[tuple(slice(None, None, -1) for _ in a.shape)], "negative strides"
    if k == 3 and a.ndim >= 2:                   # Fortran order
        return np.asfortranarray(a), "fortran order"
    if k == 4 and a.shape[0] == 1:               # zero stride along a broadcast axis
        return np.broadcast_to(a[:1], a.shape), "broadcast (zero stride)"
    return a, "contiguous"


def rand_shape(rng, ndim=None, max_dim=6):
    ndim = int(rng.integers(0, 4)) if ndim is None else ndim
    return tuple(int(rng.integers(0, max_dim + 1)) if rng.random() < 0.1 else int(rng.integers(1, max_dim + 1))
                 for _ in range(ndim))


def rand_codes(rng, fmt, shape, p_bad=0.0):
    """Codes of fmt (valid ones) in a random integer dtype that holds them; p_bad: out-of-range injection."""
    fmt = numsim.get_format(fmt)
    hi = 2**fmt.bits
    c = rng.integers(0, hi, size=shape, dtype=np.int64)
    if getattr(fmt, "symmetric", False):
        c[c == hi // 2] = 0
    dt = _pick(rng, [fmt.dtype.name, "uint32", "int64", "uint64", "int32"])
    c = c.astype(dt)
    bad = False
    if c.size and rng.random() < p_bad:
        idx = tuple(int(rng.integers(0, s)) for s in shape)
        v = int(_pick(rng, [hi, hi + 7, -1])) if np.dtype(dt).kind == "i" else hi
        if np.dtype(dt).itemsize * 8 > fmt.bits or np.dtype(dt).kind == "i":
            c = c.astype(np.int64)
            c[idx] = v
            bad = True
    return c, bad


def bad_dtype_array(rng, shape, real_ok=False):
    # an empty float array is allowed as an empty code list (numpy makes [] float64; numsim.units._c._codes)
    empty = int(np.prod(shape)) == 0
    kinds = ["bool", "complex128", "object", "str"] + ([] if real_ok or empty else ["float64", "float32"])
    kind = _pick(rng, kinds)
    if kind == "object":
        return np.full(shape, None, dtype=object), "object dtype"
    if kind == "str":
        return np.full(shape, "1"), "string dtype"
    return np.zeros(shape, dtype=kind), f"{kind} dtype"


# ---- the call generators: each returns (label, bad_class or None, thunk, check(result) or None) --------

def gen_encode(rng):
    fmt = _pick(rng, list(REGISTRY))
    shape = rand_shape(rng, int(rng.integers(1, 4)))     # 0-d: see test_fuzz.py (codec returns shape (1,))
    x = rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape)
    bad = None
    r = rng.random()
    if r < 0.08:
        fmt, bad = BAD_NAMES[int(rng.integers(0, len(BAD_NAMES)))], "unknown format name"
    elif r < 0.14:
        x, bad = bad_dtype_array(rng, shape, real_ok=True)
    x = x.astype(_pick(rng, ["float64", "float32", "float16"])) if bad is None and rng.random() < 0.3 else x
    if bad is None and x.size and rng.random() < 0.15:
        x = np.array(x, dtype=np.float64)
        x.flat[int(rng.integers(0, x.size))] = _pick(rng, [np.nan, np.inf, -np.inf])
    kw = {"rounding": _pick(rng, MODES), "seed": int(rng.integers(0, 2**63)), "nan": _pick(rng, ["error", "zero"])}
    if rng.random() < 0.4:
        kw["overflow"] = _pick(rng, ["saturate", "wrap", "to_inf", "to_nan", "error"])
    if rng.random() < 0.2:
        kw["random_bits"] = int(rng.integers(1, 33))
    if rng.random() < 0.2:
        kw["underflow"] = _pick(rng, ["round", "flush"])
    if bad is None and rng.random() < 0.05:
        kw["rounding"], bad = _pick(rng, ["nearest", "bogus"]), None
        if kw["rounding"] == "bogus":
            bad = "unknown rounding mode"
    if bad is None and rng.random() < 0.03:
        kw["random_bits"], bad = int(_pick(rng, [0, 33])), "random_bits out of range"
    xs, how = (strided_variants(x, rng) if bad is None else (x, "contiguous"))

    def check(res):
        again = numsim.encode(np.ascontiguousarray(x), fmt, **kw)
        if not np.array_equal(res, again):
            i = np.nonzero(res.ravel() != again.ravel())[0][0]
            raise AssertionError(f"encode {fmt} {kw}: {how} {x.dtype} input {x.ravel()[i]!r} (flat index {i}) gave "
                                 f"{res.ravel()[i]}, a contiguous copy {again.ravel()[i]}")
        assert res.shape == np.shape(x), f"encode returned shape {res.shape} for input shape {np.shape(x)} ({how})"
    return f"encode({how})", bad, lambda: numsim.encode(xs, fmt, **kw), check


def gen_decode(rng):
    fmt = _pick(rng, list(REGISTRY))
    shape = rand_shape(rng, int(rng.integers(1, 4)))
    c, oob = rand_codes(rng, fmt, shape, p_bad=0.15)
    bad = "code out of range" if oob else None
    if bad is None and rng.random() < 0.1:
        c, bad = bad_dtype_array(rng, shape)
    if bad is None and rng.random() < 0.05:
        fmt, bad = "fp5", "unknown format name"
    cs, how = (strided_variants(c, rng) if bad is None else (c, "contiguous"))

    def check(res):
        assert np.array_equal(res, numsim.decode(np.ascontiguousarray(c), fmt), equal_nan=True)
    return f"decode({how})", bad, lambda: numsim.decode(cs, fmt), check


UNIT_OVERRIDES = {
    "order": ["sequential", "chunked", "pairwise"],
    "chunk": [1, 2, 3, 7],
}


def rand_unit(rng):
    name = _pick(rng, unit_names())
    u = get_unit(name)
    fields = getattr(u, "__dataclass_fields__", {})
    if "order" in fields and "chunk" in fields and rng.random() < 0.5:
        u = get_unit(name, order=_pick(rng, UNIT_OVERRIDES["order"]), chunk=int(_pick(rng, UNIT_OVERRIDES["chunk"])))
    if isinstance(u, mac.FloatMacUnit) and rng.random() < 0.4:
        u = get_unit(u, acc_rounding=str(_pick(rng, MODES[:5])))
    if isinstance(u, mac.Int4Fp4r4Unit) and rng.random() < 0.5:
        u = get_unit(u, phase="odd", odd_underflow=_pick(rng, ["flush", "exact", "clamp"]))
    if isinstance(u, (mac.IntMacUnit, mac.SampleShiftUnit)) and rng.random() < 0.5:
        u = get_unit(u, widen_overflow=_pick(rng, ["wrap", "saturate", "error"]),
                     acc_overflow=_pick(rng, ["wrap", "saturate", "error"]))
    if isinstance(u, mac.SampleShiftUnit) and rng.random() < 0.5:
        u = get_unit(u, grouping=_pick(rng, ["per_sample", "per_shift"]),
                     shift_direction=_pick(rng, ["left", "right"]))
    return u


def unit_ctx(u, rng, K):
    key = getattr(u, "_ctx_key", None)
    if key is None:
        return {}, None
    lo, hi = u._ctx_range
    if key == "align_shift" and rng.random() < 0.5:
        return {}, None
    v = rng.integers(lo, min(hi, 6) + 1, K)
    if rng.random() < 0.06:
        if K:
            v[int(rng.integers(0, K))] = hi + 1
            return {key: v}, f"{key} out of range"
    if rng.random() < 0.04:
        return {key: v[:-1] if K else np.zeros(1, int)}, f"{key} of the wrong length"
    return {key: v}, None


def gen_gemm(rng):
    u = rand_unit(rng)
    M, K, N = (int(rng.integers(0, 7)) if rng.random() < 0.1 else int(rng.integers(1, 9)) for _ in range(3))
    a, bad_a = rand_codes(rng, u.a_fmt, (M, K), p_bad=0.05)
    b, bad_b = rand_codes(rng, u.b_fmt, (K, N), p_bad=0.05)
    bad = "code out of range" if bad_a or bad_b else None
    ctx, bad_ctx = unit_ctx(u, rng, K)
    bad = bad or bad_ctx
    c = None
    if rng.random() < 0.3:
        # seed units take accumulator codes; the H100 presets take signed integers as int32 values
        seed_unit = isinstance(u, CUnit)
        c, oob = rand_codes(rng, u.acc_fmt, (M, N), p_bad=0.05 if seed_unit else 0.0)
        if not seed_unit and c.dtype.kind == "i":
            c = c.astype(np.uint32)
        bad = bad or ("code out of range" if oob else None)
    nthreads = int(rng.integers(1, 5))
    r = rng.random()
    if bad is None and r < 0.05:
        b, bad = rand_codes(rng, u.b_fmt, (K + 1, N))[0], "mismatched reduction length"
    elif bad is None and r < 0.09:
        a, bad = bad_dtype_array(rng, (M, K))
    elif bad is None and r < 0.12:
        a, bad = np.zeros((M, K, 2), np.uint8), "wrong number of dimensions"
    elif bad is None and r < 0.14:
        nthreads, bad = int(_pick(rng, [0, -1])), "nthreads out of range"
    elif bad is None and r < 0.16:
        ctx, bad = dict(ctx, bogus_context=np.zeros(K, int)), "unknown context key"
    av, how_a = strided_variants(a, rng) if bad is None else (a, "contiguous")
    bv, how_b = strided_variants(b, rng) if bad is None else (b, "contiguous")

    def check(res):
        ref = u.gemm_codes(np.ascontiguousarray(a), np.ascontiguousarray(b), c=c, nthreads=1, **ctx)
        assert np.array_equal(res.codes, ref.codes), f"gemm_codes({how_a}, {how_b}) != contiguous, 1 thread"
        if M * N and M * N <= 12 and K:
            i, j = int(rng.integers(0, M)), int(rng.integers(0, N))
            d = u.dot(a[i], b[:, j], c=None if c is None else c[i, j], **ctx)
            assert d.code == int(res.codes[i, j]) or getattr(u, "phase", "even") == "odd", "gemm != dot"
    return (f"{u.name}.gemm_codes({how_a}, {how_b})", bad,
            lambda: u.gemm_codes(av, bv, c=c, nthreads=nthreads, **ctx), check)


def gen_dot_step(rng):
    u = rand_unit(rng)
    K = int(rng.integers(0, 12))
    a, bad_a = rand_codes(rng, u.a_fmt, (K,), p_bad=0.05)
    b, bad_b = rand_codes(rng, u.b_fmt, (K,), p_bad=0.05)
    bad = "code out of range" if bad_a or bad_b else None
    ctx, bad_ctx = unit_ctx(u, rng, K)
    bad = bad or bad_ctx
    trace = bool(rng.random() < 0.5)
    if rng.random() < 0.5 or not K:
        if bad is None and rng.random() < 0.05:
            b, bad = b[:-1] if K else np.zeros(1, np.uint8), "mismatched lengths"
        av, how = strided_variants(a, rng) if bad is None else (a, "contiguous")

        def check(res):
            ref = u.dot(np.ascontiguousarray(a), np.ascontiguousarray(b), trace=trace, **ctx)
            assert res.code == ref.code and res.trace == ref.trace
        return f"{u.name}.dot({how})", bad, lambda: u.dot(av, b, trace=trace, **ctx), check
    # one step, on its own codes (units without initial_state start from None: +0)
    st = u.initial_state() if hasattr(u, "initial_state") else None
    k = int(rng.integers(0, K))
    sctx = {key: int(v[k]) for key, v in ctx.items()} if bad_ctx is None else {}
    bad = None
    if isinstance(u, mac.FloatMacUnit):
        n = int(rng.integers(1, u.k_step + 1))
        sa, oa = rand_codes(rng, u.a_fmt, (n,), p_bad=0.05)
        sb, ob = rand_codes(rng, u.b_fmt, (n,), p_bad=0.05)
        if n == 1 and rng.random() < 0.5:
            sa, sb = sa[0], sb[0]
    else:
        sa, oa = rand_codes(rng, u.a_fmt, (), p_bad=0.05)
        sb, ob = rand_codes(rng, u.b_fmt, (), p_bad=0.05)
    if oa or ob:
        bad = "code out of range"
    if bad is None and rng.random() < 0.1:
        sa, bad = 1.5, "float operand code"
    if bad is None and rng.random() < 0.05:
        st, bad = (2**40 if rng.random() < 0.5 else -1), "accumulator state out of range"
    return f"{u.name}.step", bad, lambda: u.step(st, sa, sb, **sctx), None


def gen_matmul(rng):
    u = rand_unit(rng)
    batch = tuple(int(rng.integers(1, 3)) for _ in range(int(rng.integers(0, 3))))
    M, K, N = (int(rng.integers(1, 6)) for _ in range(3))
    a, _ = rand_codes(rng, u.a_fmt, batch + (M, K))
    b, _ = rand_codes(rng, u.b_fmt, (K, N))
    ctx, bad = unit_ctx(u, rng, K)
    if isinstance(u, mac.SampleShiftUnit):
        return gen_gemm(rng)            # matmul takes sample shifts through QTensors; gemm covers the unit
    bad = None
    if rng.random() < 0.05:
        b, bad = rand_codes(rng, u.b_fmt, (K + 2, N))[0], "mismatched reduction length"
    if rng.random() < 0.03:
        u, bad = "no_such_unit", "unknown unit name"
    av, how = strided_variants(a, rng) if bad is None else (a, "contiguous")
    nthreads = int(rng.integers(1, 5))

    def check(res):
        ref = G.matmul(np.ascontiguousarray(a), b, u, nthreads=1)
        assert np.array_equal(res.codes, ref.codes), "matmul strided/threads != contiguous 1 thread"
    return f"matmul({how})", bad, lambda: G.matmul(av, b, u, nthreads=nthreads), check


def gen_conv(rng):
    u = rand_unit(rng)
    if isinstance(u, mac.SampleShiftUnit):
        return gen_gemm(rng)
    g = int(_pick(rng, [1, 1, 2]))
    cin, o = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x, _ = rand_codes(rng, u.a_fmt, (int(rng.integers(1, 3)), cin, int(rng.integers(1, 8)), int(rng.integers(1, 8))))
    w, _ = rand_codes(rng, u.b_fmt, (o, cin // g, kh, kw))
    kw_ = dict(stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 3)), dilation=int(rng.integers(1, 3)),
               groups=g)
    bad = None
    r = rng.random()
    if r < 0.05:
        kw_["stride"], bad = 0, "stride < 1"
    elif r < 0.08:
        kw_["padding"], bad = 1.5, "non-integer padding"
    elif r < 0.1:
        w, bad = w[:, :, :, :, None], "wrong number of dimensions"
    xv, how = strided_variants(x, rng) if bad is None else (x, "contiguous")

    def check(res):
        ref = G.conv2d(np.ascontiguousarray(x), w, u, nthreads=1, max_patch_bytes=64, **kw_)
        assert np.array_equal(res.codes, ref.codes), "conv2d strided != contiguous (image-by-image patches)"
    return f"conv2d({how})", bad, lambda: G.conv2d(xv, w, u, **kw_), check


def gen_misc(rng):
    shape = rand_shape(rng)
    r = rng.random()
    if r < 0.5:
        c, oob = rand_codes(rng, "fp16", shape, p_bad=0.1)
        pol = _pick(rng, ["flush", "exact", "clamp"]) if rng.random() > 0.05 else "round"
        bad = "code out of range" if oob else ("unknown policy name" if pol == "round" else None)
        cv, how = strided_variants(c, rng) if bad is None else (c, "contiguous")

        def check(res):
            assert np.array_equal(res, mac.odd_phase_trick(np.ascontiguousarray(c), pol))
        return f"odd_phase_trick({how})", bad, lambda: mac.odd_phase_trick(cv, pol), check
    v = np.asarray(rng.integers(0, 2**32, shape, dtype=np.uint64)).astype(np.uint32)
    stage = mac.RequantInt8.from_scale(float(rng.uniform(1e-4, 2)), zero_point=int(rng.integers(-5, 5)))
    vv, how = strided_variants(v, rng)

    def check(res):
        assert np.array_equal(res, stage.apply(np.ascontiguousarray(v)))
    return f"requant_int8({how})", None, lambda: stage.apply(vv), check


def gen_kernel(rng):
    """Every fast kernel (fma_chain*, imatmul*, int lanes, fused adder, ...) forced on a random problem in its
    domain, with strided operands and shapes across the kernels' tile edges (8 rows, 32-128 columns, 64 k),
    against the MAC-level kernel of the same unit."""
    from numsim import kernels as K_
    u = rand_unit(rng)
    M, K, N = (int(rng.integers(1, 70)) if rng.random() < 0.5 else int(rng.integers(1, 10)) for _ in range(3))
    a = rand_codes(rng, u.a_fmt, (M, K))[0]
    b = rand_codes(rng, u.b_fmt, (K, N))[0]
    ctx, bad_ctx = unit_ctx(u, rng, K)
    if bad_ctx:
        ctx = {}
    c = None
    if rng.random() < 0.3 and isinstance(u, CUnit):
        c = rand_codes(rng, u.acc_fmt, (M, N))[0]
    nthreads = int(rng.integers(1, 4))
    ks = [k for k in K_.available(u) if not k.name.endswith(".mac_level")]
    if not ks:
        return gen_gemm(rng)
    k = ks[int(rng.integers(0, len(ks)))]
    try:
        p = u.problem(a, b, c=c, nthreads=nthreads, ctx=ctx)
    except NumsimError:
        return gen_gemm(rng)
    if k.domain(u, p) is not None:
        return gen_gemm(rng)
    av, how_a = strided_variants(a, rng)
    bv, how_b = strided_variants(b, rng)

    def check(res):
        mac = K_.mac_level_gemm(u, a, b, c=c, ctx=ctx, nthreads=1)
        assert np.array_equal(res.codes, mac.codes), f"kernel {k.name} != MAC level"
        assert res.overflow_count == mac.overflow_count, f"kernel {k.name} overflow_count != MAC level"
        if mac.out_codes is not None:
            assert np.array_equal(res.out_codes, mac.out_codes), f"kernel {k.name} out_codes != MAC level"
    return (f"{u.name} kernel {k.name}({how_a}, {how_b})", None,
            lambda: K_.gemm(u, av, bv, c=c, nthreads=nthreads, ctx=ctx, kernel=k.name), check)


GENERATORS = [(gen_encode, 3), (gen_decode, 2), (gen_gemm, 4), (gen_dot_step, 3), (gen_matmul, 1), (gen_conv, 1),
              (gen_misc, 1), (gen_kernel, 3)]


def run(calls=2000, seed=0, verbose=False):
    """Make `calls` random calls; returns a summary dict. Findings are listed, never raised."""
    spy = install_spy()
    rng = np.random.default_rng(seed)
    gens = [g for g, w in GENERATORS for _ in range(w)]
    stats = collections.Counter()
    bad_classes = collections.defaultdict(collections.Counter)
    findings = []
    known = collections.Counter()
    t0 = time.perf_counter()
    for i in range(calls):
        gen = gens[int(rng.integers(0, len(gens)))]
        label, bad, thunk, check = gen(rng)
        spy.calls = 0
        try:
            res = thunk()
        except NumsimError as e:
            kernel_calls = spy.calls
            msg = str(e)
            stats["rejected"] += 1
            if bad is not None:
                bad_classes[bad][msg.split(":")[0][:40]] += 1
                if kernel_calls:
                    findings.append({"call": i, "label": label, "class": bad,
                                     "finding": f"rejected only after {kernel_calls} kernel call(s)", "msg": msg})
            else:
                stats["rejected_valid_structure"] += 1         # value errors (NaN, overflow='error', ...)
                bad_classes["value error found by a kernel" if kernel_calls else "other rejection before C"][
                    msg.split(":")[0][:40]] += 1
            continue
        except Exception as e:  # noqa: BLE001 - any other exception is a finding
            findings.append({"call": i, "label": label, "class": bad, "finding": f"{type(e).__name__}: {e}",
                             "trace": traceback.format_exc(limit=3)})
            continue
        stats["ok"] += 1
        if bad is not None:
            findings.append({"call": i, "label": label, "class": bad, "finding": "invalid call accepted"})
            continue
        if check is not None:
            try:
                check(res)
                stats["checked"] += 1
            except AssertionError as e:
                findings.append({"call": i, "label": label, "finding": f"check failed: {e}"})
            except NumsimError as e:
                findings.append({"call": i, "label": label, "finding": f"re-run raised: {e}"})
        if verbose and i % 500 == 0:
            print(i, dict(stats), file=sys.stderr)
    for f in list(findings):
        k = known_issue(f["label"], f["finding"])
        if k:
            known[k] += 1
            findings.remove(f)
    return {"calls": calls, "seed": seed, "seconds": round(time.perf_counter() - t0, 2), **stats,
            "bad_input_classes": {k: dict(v) for k, v in bad_classes.items()}, "known_issues": dict(known),
            "findings": findings}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the summary here")
    args = ap.parse_args(argv)
    res = run(args.calls, args.seed, verbose=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print(f"fuzz: {res['calls']} calls in {res['seconds']} s: {res.get('ok', 0)} ok ({res.get('checked', 0)} "
          f"checked against contiguous / 1-thread / dot), {res.get('rejected', 0)} NumsimError, "
          f"{len(res['findings'])} findings")
    for k, n in res["known_issues"].items():
        print(f"  known issue x{n}: {k}")
    for cls, msgs in sorted(res["bad_input_classes"].items()):
        print(f"  {cls:38} -> {dict(msgs)}")
    for f in res["findings"][:30]:
        print("  FINDING", f)
    return 1 if res["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
