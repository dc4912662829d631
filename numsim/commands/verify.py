"""`numsim verify fp16`: the FP16 adder of the MAC units against independent oracles.

The adder under test is the C accumulate step `ns_f16_add(a, b, rounding)` (csrc/units.c), driven
through the vector loop `ns_f16_add_outer` (csrc/verify.c, a plain loop over the scalar adder).

Oracles, each computed a different way from the adder:
- nearest_even: the exact float64 sum (two FP16 values span at most 2^16 .. 2^-24, 41 bits, so the
  float64 add is exact), rounded once by numpy's float64 -> float16 cast.
- the other deterministic modes: numpy's nearest-even result r, then the sign of the exact residual
  s - r (exact in float64: both are multiples of 2^-24 below 2^17) says whether r lies on the
  wrong side for the mode; then r steps one FP16 ulp with np.nextafter. nearest_away steps away
  from zero only at an exact tie (|s - r| equal to the distance to the other neighbour).
  Zero sums take IEEE 754's sign: -0 under toward_neg unless both operands are +0.
- MPFR (gmpy2) in a binary16 context (precision 11, emin -23, emax 16, subnormalize) on a sample,
  for the four modes MPFR has (it has no nearest-away).

The full sweep is 2^32 pairs per mode, in chunks of `chunk_a` first operands x all 65536 second
operands; a JSON state file records finished chunks so an interrupted run resumes.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

MODES = ("nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos")
MODE_CODE = {m: i for i, m in enumerate(MODES)}
MPFR_MODES = ("nearest_even", "toward_zero", "toward_neg", "toward_pos")
ALL_CODES = np.arange(65536, dtype=np.uint32).astype(np.uint16)
STATE_VERSION = 1


# ---- the adder under test ----------------------------------------------------------------------

def c_f16_add(a, b, mode="nearest_even") -> np.ndarray:
    """ns_f16_add over equal-length code arrays (or broadcastable ones)."""
    from .._ffi import cptr, lib

    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.uint16), np.asarray(b, dtype=np.uint16))
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    out = np.empty(a.shape, dtype=np.uint16)
    lib.ns_f16_add_vec(cptr("uint16_t *", a), cptr("uint16_t *", b), a.size, MODE_CODE[mode],
                       cptr("uint16_t *", out))
    return out


def c_f16_add_outer(a, b, mode="nearest_even") -> np.ndarray:
    """(len(a), len(b)) table of ns_f16_add(a[i], b[j])."""
    from .._ffi import cptr, lib

    a = np.ascontiguousarray(a, dtype=np.uint16)
    b = np.ascontiguousarray(b, dtype=np.uint16)
    out = np.empty((a.size, b.size), dtype=np.uint16)
    lib.ns_f16_add_outer(cptr("uint16_t *", a), a.size, cptr("uint16_t *", b), b.size, MODE_CODE[mode],
                         cptr("uint16_t *", out))
    return out


# ---- oracle 1: numpy ----------------------------------------------------------------------------

def zero_sum_negative(terms, mode):
    """IEEE 754's sign of an exactly zero sum of float64 terms: the common sign when every term is a zero
    of one sign; otherwise -0 under toward_neg and +0 in the other modes."""
    neg = [np.signbit(t) & (t == 0) for t in terms]
    pos = [~np.signbit(t) & (t == 0) for t in terms]
    all_neg = np.logical_and.reduce(neg)
    all_pos = np.logical_and.reduce(pos)
    return all_neg | (~all_pos & (mode == "toward_neg"))


def numpy_round_f16(s, err, mode, zero_negative) -> np.ndarray:
    """FP16 codes of the exact real s + err rounded once in `mode`.

    s: float64 array (the exact sum, or its nearest double), err: float64 array, the exact residual of s
    (0 where s is exact; |err| <= half an ulp of s), or None when every s is exact. zero_negative: the
    sign of an exactly zero sum. numpy's float64 -> float16 cast rounds to nearest even once; when
    err != 0, s is first moved to the odd neighbour on err's side (round to odd: 53 >= 11 + 2 bits, so the
    cast is then correctly rounded). Directed modes and nearest-away then step one FP16 ulp by the sign of
    the exact residual. The work past the cast is done only on the elements that need it.
    """
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(all="ignore"):
        if err is not None:
            err = np.broadcast_to(np.asarray(err, dtype=np.float64), s.shape)
            fix = (err != 0) & ~(s.view(np.uint64) & 1).astype(bool)
            if fix.any():
                s_odd = s.copy()
                s_odd[fix] = np.nextafter(s[fix], np.where(err[fix] > 0, np.inf, -np.inf))
            else:
                s_odd = s
        else:
            s_odd = s
        out = s_odd.astype(np.float16).view(np.uint16)                   # nearest even, once
        zero = s == 0
        if err is not None:
            zero &= err == 0
        if zero.any():
            out = out.copy() if not out.flags.writeable else out
            out[zero] = np.where(np.broadcast_to(zero_negative, s.shape)[zero], np.uint16(0x8000), np.uint16(0))
        if mode == "nearest_even":
            return out
        r = out.view(np.float16)
        rd = r.astype(np.float64)
        inexact = np.isfinite(s) & (s != rd)
        if err is not None:
            inexact |= np.isfinite(s) & (err != 0)
        idx = np.nonzero(inexact.reshape(-1))[0]
        if idx.size == 0:
            return out
        sf, rf = s.reshape(-1)[idx], rd.reshape(-1)[idx]
        # sign of (exact - r): s - r is exact (r is within an FP16 ulp of s); when s == r it is err's sign
        d = sf - rf
        if err is not None:
            ef = err.reshape(-1)[idx]
            d = np.where(d != 0, d, ef)
        if mode == "toward_pos":
            step, up = d > 0, np.ones(idx.size, bool)
        elif mode == "toward_neg":
            step, up = d < 0, np.zeros(idx.size, bool)
        elif mode == "toward_zero":
            step = ((sf > 0) & (d < 0)) | ((sf < 0) & (d > 0))
            up = sf < 0
        elif mode == "nearest_away":
            up = d > 0
            other = np.nextafter(r.reshape(-1)[idx], np.where(up, np.float16(np.inf), np.float16(-np.inf))
                                 .astype(np.float16)).astype(np.float64)
            tie = np.abs(other - sf) == np.abs(d)
            if err is not None:
                tie &= ef == 0
            step = tie & (np.abs(other) > np.abs(rf))
        else:
            raise ValueError(mode)
        sel = idx[step]
        target = np.where(up[step], np.float16(np.inf), np.float16(-np.inf)).astype(np.float16)
        flat = out.reshape(-1).copy()
        flat[sel] = np.nextafter(flat[sel].view(np.float16), target).view(np.uint16)
    return flat.reshape(out.shape)


def numpy_f16_add(a, b, mode="nearest_even") -> np.ndarray:
    """The oracle: FP16 codes of a + b rounded once in `mode` (a, b broadcastable uint16 code arrays).
    NaN results keep numpy's (x86's) propagation: the first NaN operand quieted, else the default NaN."""
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    fa = a.view(np.float16).astype(np.float64)
    fb = b.view(np.float16).astype(np.float64)
    with np.errstate(all="ignore"):
        s = fa + fb                                    # exact: 41 bits at most
    fa, fb, s = np.broadcast_arrays(fa, fb, s)
    zero_neg = zero_sum_negative([fa, fb], mode) if np.any(s == 0) else False
    return numpy_round_f16(s, None, mode, zero_neg)


# ---- oracle 2: MPFR ------------------------------------------------------------------------------

def mpfr_f16_add(a_codes, b_codes, mode="nearest_even") -> np.ndarray:
    """a + b in an MPFR binary16 context (needs gmpy2); NaN results are the default NaN 0xFE00 unless an
    operand is NaN, in which case the result is the first NaN operand quieted (IEEE 754 leaves the payload
    open; this is the rule numsim documents)."""
    import gmpy2

    rnd = {"nearest_even": gmpy2.RoundToNearest, "toward_zero": gmpy2.RoundToZero,
           "toward_pos": gmpy2.RoundUp, "toward_neg": gmpy2.RoundDown}[mode]
    ctx = gmpy2.context(precision=11, emin=-23, emax=16, subnormalize=True, round=rnd)
    a = np.asarray(a_codes, dtype=np.uint16).ravel()
    b = np.asarray(b_codes, dtype=np.uint16).ravel()
    fa = a.view(np.float16).astype(np.float64)
    fb = b.view(np.float16).astype(np.float64)
    out = np.empty(a.size, dtype=np.uint16)
    with gmpy2.context(ctx):
        for i in range(a.size):
            x, y = fa[i], fb[i]
            if np.isnan(x) or np.isnan(y):
                out[i] = (a[i] if np.isnan(x) else b[i]) | 0x0200
                continue
            s = gmpy2.add(gmpy2.mpfr(float(x)), gmpy2.mpfr(float(y)))
            if gmpy2.is_nan(s):
                out[i] = 0xFE00
            elif s == 0:
                out[i] = 0x8000 if gmpy2.is_signed(s) else 0
            else:
                out[i] = np.float16(float(s)).view(np.uint16)   # s is an FP16 value: exact
    return out


# ---- samples -----------------------------------------------------------------------------------

def stratified_pairs(per_stratum=16, seed=0):
    """Every (sign, exponent field) of a x every (sign, exponent field) of b: 4096 strata, each with the
    mantissas {0, 1, 0x200, 0x3FF} crossed with themselves and `per_stratum` random mantissa pairs."""
    rng = np.random.default_rng(seed)
    se = np.arange(64, dtype=np.uint32)                          # sign << 5 | exponent field
    sa, sb = np.meshgrid(se, se, indexing="ij")
    sa, sb = sa.ravel(), sb.ravel()
    edge = np.array([0, 1, 0x200, 0x3FF], dtype=np.uint32)
    ea, eb = np.meshgrid(edge, edge, indexing="ij")
    ma = np.concatenate([np.tile(ea.ravel(), (sa.size, 1)), rng.integers(0, 1024, (sa.size, per_stratum))], axis=1)
    mb = np.concatenate([np.tile(eb.ravel(), (sa.size, 1)), rng.integers(0, 1024, (sa.size, per_stratum))], axis=1)
    a = (sa[:, None] << 10) | ma
    b = (sb[:, None] << 10) | mb
    return a.ravel().astype(np.uint16), b.ravel().astype(np.uint16)


def describe_pair(a, b, got, want):
    f = lambda c: float(np.uint16(c).view(np.float16))  # noqa: E731
    return {"a": f"0x{int(a):04X}", "b": f"0x{int(b):04X}", "a_value": repr(f(a)), "b_value": repr(f(b)),
            "got": f"0x{int(got):04X}", "want": f"0x{int(want):04X}"}


# ---- the exhaustive sweep ---------------------------------------------------------------------------

def sweep_chunk(task):
    """(mode, a0, a1): every a in [a0, a1) x every b; returns counts and the first mismatches."""
    mode, a0, a1 = task
    t = time.perf_counter()
    a = ALL_CODES[a0:a1]
    got = c_f16_add_outer(a, ALL_CODES, mode)
    want = numpy_f16_add(a[:, None], ALL_CODES[None, :], mode)
    bad = got != want
    n_bad = int(np.count_nonzero(bad))
    examples = []
    if n_bad:
        for i, j in np.argwhere(bad)[:10]:
            examples.append(describe_pair(a[i], ALL_CODES[j], got[i, j], want[i, j]))
    return {"mode": mode, "a0": a0, "a1": a1, "pairs": int(got.size), "mismatches": n_bad,
            "nan_results": int(np.count_nonzero(((got & 0x7C00) == 0x7C00) & ((got & 0x3FF) != 0))),
            "examples": examples, "seconds": time.perf_counter() - t}


def _load_state(path, modes, chunk_a):
    if path and os.path.exists(path):
        with open(path) as f:
            st = json.load(f)
        if st.get("version") != STATE_VERSION or st.get("chunk_a") != chunk_a:
            raise SystemExit(f"{path}: state of another run (chunk_a {st.get('chunk_a')}); delete it or pass "
                             f"--chunk-a {st.get('chunk_a')}")
    else:
        st = {"version": STATE_VERSION, "chunk_a": chunk_a, "modes": {}}
    for m in modes:
        st["modes"].setdefault(m, {"done": [], "pairs": 0, "mismatches": 0, "nan_results": 0,
                                   "examples": [], "seconds": 0.0, "wall_seconds": 0.0})
    return st


def _save_state(path, st):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f, indent=1)
    os.replace(tmp, path)


def _progress(total, initial, desc):
    try:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit="chunk", file=sys.stderr)
    except ImportError:  # a plain counter when tqdm is absent
        class _Bar:
            def __init__(self):
                self.n = initial

            def update(self, k):
                self.n += k
                print(f"\r{desc}: {self.n}/{total} chunks", end="", file=sys.stderr, flush=True)

            def close(self):
                print(file=sys.stderr)
        return _Bar()


def run_exhaustive(modes=("nearest_even",), workers=2, state_path="exhaustive_fp16_state.json", chunk_a=256,
                   max_chunks=None, progress=True):
    """Run (or resume) the sweep; returns the state dict (per mode: pairs, mismatches, examples, ...)."""
    if 65536 % chunk_a:
        raise SystemExit("--chunk-a must divide 65536")
    st = _load_state(state_path, modes, chunk_a)
    tasks = []
    for m in modes:
        done = set(st["modes"][m]["done"])
        tasks += [(m, a0, a0 + chunk_a) for a0 in range(0, 65536, chunk_a) if a0 not in done]
    if max_chunks is not None:
        tasks = tasks[:max_chunks]
    total = len(modes) * (65536 // chunk_a)
    bar = _progress(total, total - len(tasks) if max_chunks is None else 0, "fp16 add") if progress else None
    t0 = time.perf_counter()
    last = t0

    def record(res):
        nonlocal last
        s = st["modes"][res["mode"]]
        s["done"].append(res["a0"])
        for key in ("pairs", "mismatches", "nan_results", "seconds"):
            s[key] += res[key]
        s["examples"] = (s["examples"] + res["examples"])[:20]
        now = time.perf_counter()
        s["wall_seconds"] += now - last
        last = now
        _save_state(state_path, st)
        if bar:
            bar.update(1)

    if workers > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for res in pool.imap_unordered(sweep_chunk, tasks):
                record(res)
    else:
        for task in tasks:
            record(sweep_chunk(task))
    if bar:
        bar.close()
    for m in modes:
        s = st["modes"][m]
        s["complete"] = len(s["done"]) == 65536 // chunk_a
    _save_state(state_path, st)
    return st


def mpfr_sample(modes=MPFR_MODES, n_random=100_000, per_stratum=1, seed=1):
    """C adder vs MPFR on uniformly random pairs plus one random pair of every exponent stratum."""
    rng = np.random.default_rng(seed)
    sa, sb = stratified_pairs(per_stratum, seed)
    a = np.concatenate([rng.integers(0, 65536, n_random).astype(np.uint16), sa])
    b = np.concatenate([rng.integers(0, 65536, n_random).astype(np.uint16), sb])
    out = {}
    for m in modes:
        got = c_f16_add(a, b, m)
        want = mpfr_f16_add(a, b, m)
        bad = np.nonzero(got != want)[0]
        out[m] = {"pairs": int(a.size), "mismatches": int(bad.size),
                  "examples": [describe_pair(a[i], b[i], got[i], want[i]) for i in bad[:10]]}
    return out


# ---- CLI -----------------------------------------------------------------------------------------

def register(sub):
    p = sub.add_parser("verify", help="exhaustive and sampled checks of the arithmetic against independent oracles")
    vs = p.add_subparsers(dest="what", metavar="WHAT")
    f = vs.add_parser("fp16", help="the FP16 adder on all 2^32 operand pairs (resumable)")
    f.add_argument("--modes", default="nearest_even",
                   help=f"comma-separated rounding modes, or 'all' ({','.join(MODES)})")
    f.add_argument("--workers", type=int, default=2)
    f.add_argument("--state", default="exhaustive_fp16_state.json", help="resumable state file ('' for none)")
    f.add_argument("--chunk-a", type=int, default=256, help="first operands per chunk (divides 65536)")
    f.add_argument("--max-chunks", type=int, default=None, help="stop after this many chunks (a partial run)")
    f.add_argument("--sample", action="store_true",
                   help="only the stratified sample (every exponent pair, random mantissas), not the sweep")
    f.add_argument("--mpfr", type=int, default=0, help="also check this many random pairs against MPFR")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(func=run)
    u = vs.add_parser("units", help="every product and accumulate step of the small-operand-space units")
    u.add_argument("--full", action="store_true",
                   help="every FP16 accumulator code for INT4 x FP4 in every mode (minutes), FP8 x FP8 with --fp8-acc")
    u.add_argument("--fp8-acc", type=int, default=None,
                   help="with --full: FP16 accumulator codes for the FP8 x FP8 sweeps (default all 65536: hours)")
    u.set_defaults(func=run_units)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run(args):
    modes = MODES if args.modes == "all" else tuple(m.strip() for m in args.modes.split(","))
    for m in modes:
        if m not in MODES:
            from ..errors import bad

            raise bad("--modes", f"'all' or a comma list of {', '.join(MODES)}", repr(m))
    total_bad = 0
    if args.sample:
        a, b = stratified_pairs(64, 0)
        for m in modes:
            n = int(np.count_nonzero(c_f16_add(a, b, m) != numpy_f16_add(a, b, m)))
            total_bad += n
            print(f"{m:13} stratified sample: {a.size} pairs, {n} mismatches")
    else:
        t = time.perf_counter()
        st = run_exhaustive(modes, args.workers, args.state or None, args.chunk_a, args.max_chunks,
                            not args.no_progress)
        for m in modes:
            s = st["modes"][m]
            total_bad += s["mismatches"]
            print(f"{m:13} pairs {s['pairs']:>11} mismatches {s['mismatches']} NaN results {s['nan_results']} "
                  f"({'complete' if s['complete'] else 'partial'}; {s['seconds']:.0f} s CPU in workers, "
                  f"{s['wall_seconds']:.0f} s wall)")
            for e in s["examples"][:5]:
                print("   ", e)
        print(f"this invocation: {time.perf_counter() - t:.0f} s wall")
    if args.mpfr:
        try:
            res = mpfr_sample(tuple(m for m in modes if m in MPFR_MODES), args.mpfr)
        except ImportError:
            print("MPFR check skipped: gmpy2 is not installed")
        else:
            for m, r in res.items():
                total_bad += r["mismatches"]
                print(f"{m:13} MPFR sample: {r['pairs']} pairs, {r['mismatches']} mismatches")
    return 1 if total_bad else 0


# ---- small-operand-space units: every product and accumulate step --------------------------------

def _value_table(fmt):
    """float64 value of every code of fmt, from the exact-Fraction reference (not the C decoder)."""
    from ..formats import get_format
    from ..reference.formats import decode_exact

    fmt = get_format(fmt)
    vals = []
    for c in range(2**fmt.bits):
        if fmt.kind == "int" and not fmt.valid_code(c):
            vals.append(np.nan)
            continue
        v = decode_exact(c, fmt)
        vals.append({"inf": np.inf, "-inf": -np.inf, "nan": np.nan}[v] if isinstance(v, str) else float(v))
    t = np.array(vals, dtype=np.float64)
    # the reference decodes -0 to Fraction(0): restore the sign bit of float zeros
    if fmt.kind == "float":
        neg0 = (np.arange(2**fmt.bits) >> (fmt.bits - 1)).astype(bool) & (t == 0)
        t[neg0] = -0.0
    return t


def two_sum(x, y):
    """s = fl(x + y) and the exact error e (x + y = s + e), Knuth's branch-free TwoSum."""
    with np.errstate(all="ignore"):
        s = x + y
        bb = s - x
        e = (x - (s - bb)) + (y - bb)
        e = np.where(np.isfinite(s), e, 0.0)
    return s, e


def numpy_f16_mac_step(acc, prods, mode):
    """FP16 codes of acc + sum(prods) rounded once (acc: uint16 codes (n,), prods: float64 (n, g), exact
    products). NaN rules of the units: a NaN accumulator propagates quieted; a NaN product (NaN operand,
    0 x inf) or inf - inf gives the default NaN 0xFE00."""
    acc = np.asarray(acc, dtype=np.uint16)
    av = acc.view(np.float16).astype(np.float64)
    s, e = av, np.zeros_like(av)
    terms = [av]
    for j in range(prods.shape[1]):
        p = prods[:, j]
        terms.append(p)
        s, e1 = two_sum(s, p)
        e = e + e1            # exact for the sums checked here: the unit sums fit a double, or have one product
    out = numpy_round_f16(s, e, mode, zero_sum_negative(terms, mode))
    nan_prod = np.isnan(prods).any(axis=1)
    with np.errstate(all="ignore"):
        inf_clash = np.isinf(prods).any(axis=1) & np.isnan(np.sum(np.concatenate([av[:, None], prods], 1), 1))
    out = np.where(nan_prod | inf_clash, np.uint16(0xFE00), out)
    return np.where(np.isnan(av), acc | np.uint16(0x0200), out).astype(np.uint16)


def c_float_mac_steps(unit, acc, a, b):
    """unit's fused step for every row: acc (n,) codes, a, b (n, g) codes; one C call."""
    from .._ffi import cptr, ffi, lib

    acc32 = np.ascontiguousarray(acc, dtype=np.uint32)
    a32 = np.ascontiguousarray(a, dtype=np.uint32)
    b32 = np.ascontiguousarray(b, dtype=np.uint32)
    out = np.empty(acc32.shape, dtype=np.uint32)
    err = ffi.new("int64_t *")
    st = lib.ns_float_mac_step_vec(unit._c, cptr("uint32_t *", acc32), cptr("uint32_t *", a32),
                                   cptr("uint32_t *", b32), acc32.size, a32.shape[1], cptr("uint32_t *", out), err)
    if st:
        raise RuntimeError(f"status {st} at row {err[0]}")
    return out


def c_int_mac_steps(unit, acc, a, b, shift):
    from .._ffi import cptr, ffi, lib

    acc, a, b = (np.ascontiguousarray(x, dtype=np.uint32) for x in (acc, a, b))
    shift = np.ascontiguousarray(shift, dtype=np.int32)
    out = np.empty(acc.shape, dtype=np.uint32)
    ev, err = ffi.new("int64_t *"), ffi.new("int64_t *")
    st = lib.ns_int_mac_step_vec(unit._c, cptr("uint32_t *", acc), cptr("uint32_t *", a), cptr("uint32_t *", b),
                                 cptr("int32_t *", shift), acc.size, cptr("uint32_t *", out), ev, err)
    return out, int(st), int(err[0]), int(ev[0])


def _result(name, got, want, cols):
    bad = np.nonzero(got != want)[0]
    ex = [{k: (int(v[i]) if np.ndim(v) else v) for k, v in cols.items()} | {"got": int(got[i]), "want": int(want[i])}
          for i in bad[:5]]
    return {"check": name, "steps": int(got.size), "mismatches": int(bad.size), "examples": ex}


def _acc_codes_f16(n_random, seed):
    """FP16 accumulator codes: every sign/exponent field with edge mantissas, plus random codes."""
    se = np.arange(64, dtype=np.uint32) << 10
    edge = (se[:, None] | np.array([0, 1, 0x155, 0x200, 0x3FE, 0x3FF], dtype=np.uint32)).ravel()
    rnd = np.random.default_rng(seed).integers(0, 65536, n_random).astype(np.uint32)
    return np.unique(np.concatenate([edge, rnd])).astype(np.uint16)


def check_int4_int32(acc_codes=None, shifts=range(0, 13), policies=(("wrap", "wrap"), ("saturate", "saturate"))):
    """int4_int32: every INT4 x INT4 product x alignment shift x accumulator code, against int64 numpy."""
    from ..units import get_unit

    if acc_codes is None:
        edge = np.array([0, 1, 2**31 - 1, 2**31 - 64, 2**31, 2**31 + 5, 2**32 - 1, 2**32 - 32768, 12345], np.uint64)
        acc_codes = np.concatenate([edge, np.random.default_rng(0).integers(0, 2**32, 40, dtype=np.uint64)])
    A, B, S, C = np.meshgrid(np.arange(16), np.arange(16), np.array(list(shifts)), np.asarray(acc_codes, np.int64),
                             indexing="ij")
    A, B, S, C = (x.ravel() for x in (A, B, S, C))
    ia, ib = np.where(A >= 8, A - 16, A), np.where(B >= 8, B - 16, B)
    cv = np.where(C >= 2**31, C - 2**32, C)
    out = []
    for widen_ovf, acc_ovf in policies:
        u = get_unit("int4_int32", widen_overflow=widen_ovf, acc_overflow=acc_ovf)
        w = (ia * ib) << S
        w = ((w + 2**15) % 2**16) - 2**15 if widen_ovf == "wrap" else np.clip(w, -(2**15), 2**15 - 1)
        s = cv + w
        s = ((s + 2**31) % 2**32) - 2**31 if acc_ovf == "wrap" else np.clip(s, -(2**31), 2**31 - 1)
        want = (s % 2**32).astype(np.uint32)
        got, st, _, _ = c_int_mac_steps(u, C, A, B, S)
        assert st == 0
        out.append(_result(f"int4_int32 step (widen {widen_ovf}, acc {acc_ovf})", got, want,
                           {"a": A, "b": B, "shift": S, "acc": C}))
    # 'error' widening: exactly the products whose shifted value leaves 16 bits are rejected
    u = get_unit("int4_int32")
    A1, B1, S1 = (x.reshape(16, 16, -1, len(acc_codes))[..., 0].ravel() for x in (A, B, S))
    ia1, ib1 = np.where(A1 >= 8, A1 - 16, A1), np.where(B1 >= 8, B1 - 16, B1)
    w1 = (ia1 * ib1) << S1
    overflows = (w1 < -(2**15)) | (w1 > 2**15 - 1)
    rejected = np.array([c_int_mac_steps(u, [0], [a], [b], [s])[1] == 6 for a, b, s in zip(A1, B1, S1)])
    out.append(_result("int4_int32 widen_overflow='error' rejects exactly the overflowing products",
                       rejected.astype(np.uint8), overflows.astype(np.uint8), {"a": A1, "b": B1, "shift": S1}))
    return out


def check_sample_shift(n_acc=6):
    """int4_int32_sample_shift: every INT4 x INT4 product x shift value in [0, 4], both directions."""
    from ..units import get_unit

    rng = np.random.default_rng(1)
    accs = [0, 2**31 - 1, 2**31] + [int(x) for x in rng.integers(0, 2**32, n_acc, dtype=np.uint64)]
    out = []
    for direction, rnd in (("left", "toward_neg"), ("right", "toward_neg"), ("right", "nearest_even"),
                           ("right", "toward_zero")):
        u = get_unit("int4_int32_sample_shift", shift_direction=direction, shift_rounding=rnd)
        got, want, cols = [], [], {"a": [], "b": [], "s": [], "acc": []}
        for a in range(16):
            for b in range(16):
                p = (a - 16 if a >= 8 else a) * (b - 16 if b >= 8 else b)
                for s in range(5):
                    if direction == "left":
                        w = p * 2 ** (4 - s)
                    else:
                        q = p / 2**s                                  # exact in float64
                        w = int({"toward_neg": np.floor, "toward_zero": np.trunc, "nearest_even": np.round}[rnd](q))
                    for acc in accs:
                        cv = acc - 2**32 if acc >= 2**31 else acc
                        want.append((cv + w) % 2**32)
                        got.append(u.step(acc, a, b, sample_shift=s))
                        for k, v in zip(cols, (a, b, s, acc)):
                            cols[k].append(v)
        out.append(_result(f"int4_int32_sample_shift step ({direction}, {rnd})", np.array(got, np.uint64),
                           np.array(want, np.uint64), {k: np.array(v) for k, v in cols.items()}))
    return out


def check_float_products(unit, acc_codes, modes=("nearest_even",), block=1 << 20):
    """Every (a, b) code pair of `unit` x every code in acc_codes: acc + a * b rounded once (one fused
    step with one product), against numpy. Codes the operand formats exclude are skipped."""
    from dataclasses import replace

    from ..formats import get_format

    af, bf = get_format(unit.a_fmt), get_format(unit._c_b_fmt)
    ta, tb = _value_table(af), _value_table(bf)
    a_codes = np.arange(2**af.bits)
    b_codes = np.arange(2**bf.bits)
    if af.kind == "int":
        a_codes = a_codes[~np.isnan(ta)]
    if bf.kind == "int":
        b_codes = b_codes[~np.isnan(tb)]
    pa, pb = np.meshgrid(a_codes, b_codes, indexing="ij")
    pa, pb = pa.ravel(), pb.ravel()
    with np.errstate(all="ignore"):
        prod = ta[pa] * tb[pb]                         # exact: significands of <= 26 bits in total
    acc_codes = np.asarray(acc_codes, dtype=np.uint16)
    out = []
    for mode in modes:
        u = replace(unit, acc_rounding=mode)
        total_bad, steps, examples = 0, 0, []
        per = max(1, block // pa.size)
        for i0 in range(0, acc_codes.size, per):
            acc = np.repeat(acc_codes[i0:i0 + per], pa.size)
            A = np.tile(pa, acc_codes[i0:i0 + per].size)
            B = np.tile(pb, acc_codes[i0:i0 + per].size)
            P = np.tile(prod, acc_codes[i0:i0 + per].size)
            got = c_float_mac_steps(u, acc, A[:, None], B[:, None]).astype(np.uint16)
            want = numpy_f16_mac_step(acc, P[:, None], mode)
            r = _result("", got, want, {"acc": acc, "a": A, "b": B})
            total_bad += r["mismatches"]
            steps += r["steps"]
            examples = (examples + r["examples"])[:5]
        out.append({"check": f"{unit.name} ({af} x {bf} -> fp16) every product x {acc_codes.size} acc codes, {mode}",
                    "steps": steps, "mismatches": total_bad, "examples": examples})
    return out


def check_fused_int4_fp4(n=200_000, modes=("nearest_even",), seed=3):
    """The 4-way INT4 x FP4 step: random 4-tuples of products plus random FP16 accumulators."""
    from dataclasses import replace

    from ..units import get_unit

    unit = get_unit("int4_fp4r4_fp16")
    ta, tb = _value_table(unit.a_fmt), _value_table(unit._c_b_fmt)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 16, (n, 4))
    b = rng.integers(0, 16, (n, 4))
    acc = _acc_codes_f16(0, 0)
    acc = np.concatenate([acc, rng.integers(0, 65536, n - acc.size)]).astype(np.uint16)
    out = []
    for mode in modes:
        u = replace(unit, acc_rounding=mode)
        got = c_float_mac_steps(u, acc, a, b).astype(np.uint16)
        want = numpy_f16_mac_step(acc, ta[a] * tb[b], mode)
        out.append(_result(f"int4_fp4r4_fp16 4-way fused step, {n} random, {mode}", got, want, {"acc": acc}))
    return out


def check_odd_phase_trick():
    """The exponent trick on every FP16 code, against the field arithmetic in numpy, every policy."""
    from ..units import odd_phase_trick

    c = ALL_CODES
    field = (c >> 10) & 0x1F
    out = []
    for pol in ("flush", "clamp", "exact"):
        want = np.where(field >= 2, c - 0x400, 0).astype(np.uint16)
        if pol == "flush":
            low = c & 0x8000
        elif pol == "clamp":
            low = np.where(field == 1, c - 0x400, c)
        else:
            with np.errstate(invalid="ignore"):
                half = c.view(np.float16).astype(np.float64) * 0.5
            low = numpy_round_f16(half, None, "nearest_even", np.signbit(c.view(np.float16)))
        want = np.where(field >= 2, want, low)
        want = np.where(field == 0x1F, c, want).astype(np.uint16)
        out.append(_result(f"odd-phase exponent trick ({pol}) on all 65536 FP16 codes",
                           odd_phase_trick(c, pol), want, {"code": c}))
    return out


def check_odd_phase_gemm(acc_codes, rows_per_acc=1, nthreads=2):
    """int4_fp4r4_fp16 phase='odd' through gemm_codes with K=1: every (a, b) product with initial
    accumulators c, then the exponent trick; against numpy (step, then field arithmetic)."""
    from ..units import get_unit

    out = []
    ta, tb = _value_table("int4"), _value_table(get_unit("int4_fp4r4_fp16")._c_b_fmt)
    for pol in ("flush", "clamp", "exact"):
        u = get_unit("int4_fp4r4_fp16", phase="odd", odd_underflow=pol)
        acc = np.asarray(acc_codes, dtype=np.uint16)
        M = acc.size
        a = np.tile(np.arange(16, dtype=np.uint8), M // 16 + 1)[:M].reshape(M, 1)
        b = np.arange(16, dtype=np.uint8).reshape(1, 16)
        c = np.resize(acc, (M, 16))
        got = u.gemm_codes(a, b, c=c, nthreads=nthreads).codes
        even = numpy_f16_mac_step(c.ravel(), (ta[a] * tb[b]).reshape(-1, 1), "nearest_even")
        field = (even >> 10) & 0x1F
        if pol == "flush":
            low = even & 0x8000
        elif pol == "clamp":
            low = np.where(field == 1, even - 0x400, even)
        else:
            with np.errstate(invalid="ignore"):
                half = even.view(np.float16).astype(np.float64) * 0.5
            low = numpy_round_f16(half, None, "nearest_even", np.signbit(even.view(np.float16)))
        want = np.where(field == 0x1F, even, np.where(field >= 2, even - 0x400, low)).astype(np.uint16)
        out.append(_result(f"int4_fp4r4_fp16 odd phase ({pol}) gemm K=1, every product x {acc.size} acc codes",
                           got.ravel(), want, {"c": c.ravel()}))
    return out


def unit_checks(full=False, modes=MODES, fp8_acc=None):
    """All the small-operand-space unit checks. full=False: the CI sizes (sampled accumulator codes);
    full=True: every FP16 accumulator code for every INT4 x FP4 product in every mode, and for the FP8 x FP8
    products `fp8_acc` accumulator codes (None: all 65536, i.e. 2^32 steps per format and mode: hours)."""
    from ..units import FloatMacUnit
    from ..units import get_unit

    acc_ci = _acc_codes_f16(600, 0)                    # every sign/exponent with edge mantissas + 600 random
    acc = ALL_CODES if full else acc_ci
    res = []
    res += check_int4_int32()
    res += check_sample_shift(n_acc=6 if full else 1)
    res += check_float_products(get_unit("int4_fp4r4_fp16"), acc, modes)
    res += check_odd_phase_gemm(ALL_CODES if full else acc_ci)
    res += check_fused_int4_fp4(4_000_000 if full else 200_000, modes)
    res += check_odd_phase_trick()
    if full:
        acc8 = ALL_CODES if fp8_acc is None else _acc_codes_f16(max(0, fp8_acc - 384), 1)
        acc8e5 = acc8
    else:
        acc8, acc8e5 = acc_ci[::24], acc_ci[::48]
    res += check_float_products(get_unit("fp8_fp16"), acc8, modes)
    e5 = FloatMacUnit(name="fp8_e5m2_fp16", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", acc_fmt="fp16", order="sequential")
    res += check_float_products(e5, acc8e5, modes)
    return res


def run_units(args):
    t = time.perf_counter()
    n_bad = 0
    for r in unit_checks(full=args.full, fp8_acc=args.fp8_acc):
        n_bad += r["mismatches"]
        print(f"{r['mismatches']:>6} mismatches / {r['steps']:>11} steps  {r['check']}")
        for e in r["examples"][:3]:
            print("      ", e)
    print(f"total mismatches {n_bad}; {time.perf_counter() - t:.0f} s")
    return 1 if n_bad else 0
