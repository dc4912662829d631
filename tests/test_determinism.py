"""Determinism: every unit preset's GEMM gives identical bits for thread counts 1..4, row-chunked vs whole
calls, batched vs per-matrix matmul, conv2d patch tiling, concurrent callers, repeated runs and a fresh
process; stochastic rounding gives identical bits whole vs chunked (index_offset), float32 vs float64
input, concurrent chunk encodes, and a fresh process."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
import zlib

import numpy as np
import pytest

import numsim
from numsim.formats import get_format
from numsim.gemm import conv2d, matmul
from numsim.units import get_unit, unit_names

ORDERS = ("sequential", "chunked", "pairwise")


def _codes(rng, fmt, shape):
    f = get_format(fmt)
    c = rng.integers(0, 2**f.bits, shape, dtype=np.int64)
    if getattr(f, "symmetric", False):
        c[c == 2 ** (f.bits - 1)] = 0
    return c.astype(f.dtype)


def _ctx(u, rng, K):
    key = getattr(u, "_ctx_key", None)
    if key is None:
        return {}
    lo, hi = u._ctx_range
    return {key: rng.integers(lo, min(hi, 4) + 1, K)}


def _units():
    out = []
    for name in unit_names():
        u = get_unit(name)
        out.append((name, u))
        if hasattr(u, "order") and "chunk" in getattr(u, "__dataclass_fields__", {}):
            for order in ORDERS:
                if order != u.order:
                    out.append((f"{name}[{order}]", get_unit(name, order=order, chunk=3)))
    return out


UNITS = _units()


@pytest.mark.parametrize("name,u", UNITS, ids=[n for n, _ in UNITS])
def test_gemm_bits_independent_of_threads_chunks_and_repeats(name, u):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    M, K, N = 37, 29, 11
    a = _codes(rng, u.a_fmt, (M, K))
    b = _codes(rng, u.b_fmt, (K, N))
    ctx = _ctx(u, rng, K)
    if get_format(u.acc_fmt).kind == "float":        # an initial accumulator of ordinary values
        c = numsim.encode(rng.standard_normal((M, N)), u.acc_fmt)
    else:
        c = _codes(rng, u.acc_fmt, (M, N))
    ref = u.gemm_codes(a, b, c=c, nthreads=1, **ctx)
    for t in (1, 2, 3, 4):
        for _ in range(2):
            r = u.gemm_codes(a, b, c=c, nthreads=t, **ctx)
            assert np.array_equal(r.codes, ref.codes), (name, t)
            assert r.overflow_count == ref.overflow_count
    # row blocks as separate calls (the tiles a caller might choose) equal the whole call
    parts = [u.gemm_codes(a[i:i + 5], b, c=c[i:i + 5] if c is not None else None, nthreads=2, **ctx).codes
             for i in range(0, M, 5)]
    assert np.array_equal(np.concatenate(parts), ref.codes)
    # each output is the unit's dot product, whatever thread computed it
    for i, j in ((0, 0), (M - 1, N - 1), (M // 2, 3)):
        d = u.dot(a[i], b[:, j], c=None if c is None else c[i, j], **ctx)     # a code of the acc dtype
        assert d.code == int(ref.codes[i, j])


@pytest.mark.parametrize("name", ["int4_int32", "fp8_fp16", "int4_fp4r4_fp16", "fp16_fp32", "int4_int32_requant"])
def test_matmul_batched_threads_and_conv_tiling(name):
    u = get_unit(name)
    rng = np.random.default_rng(5)
    a = _codes(rng, u.a_fmt, (3, 2, 9, 17))
    b = _codes(rng, u.b_fmt, (2, 17, 6))
    whole = matmul(a, b, u, nthreads=1)
    for t in (2, 3, 4):
        assert np.array_equal(matmul(a, b, u, nthreads=t).codes, whole.codes)
    for i in range(3):
        for j in range(2):
            assert np.array_equal(matmul(a[i, j], b[j], u, nthreads=2).codes, whole.codes[i, j])
    x = _codes(rng, u.a_fmt, (5, 4, 9, 8))
    w = _codes(rng, u.b_fmt, (6, 2, 3, 3))
    ref = conv2d(x, w, u, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, nthreads=1)
    for t, patch in ((4, 64), (2, 1 << 12), (3, 1 << 30)):          # one image per GEMM .. all images at once
        r = conv2d(x, w, u, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, nthreads=t, max_patch_bytes=patch)
        assert np.array_equal(r.codes, ref.codes)
        if ref.out_codes is not None:
            assert np.array_equal(r.out_codes, ref.out_codes)


def test_concurrent_callers_get_the_serial_bits():
    """Four Python threads run GEMMs and encodes at once (cffi releases the GIL): no shared state."""
    u = get_unit("fp8_fp16")
    rng = np.random.default_rng(6)
    jobs = [(_codes(rng, u.a_fmt, (40, 64)), _codes(rng, u.b_fmt, (64, 30))) for _ in range(8)]
    serial = [u.gemm_codes(a, b, nthreads=2).codes for a, b in jobs]
    x = rng.standard_normal(200_000)
    enc_serial = numsim.encode(x, "fp8_e5m2", rounding="stochastic", seed=3)
    with ThreadPoolExecutor(4) as ex:
        par = list(ex.map(lambda ab: u.gemm_codes(*ab, nthreads=2).codes, jobs))
        chunks = list(ex.map(lambda i: numsim.encode(x[i:i + 25_000], "fp8_e5m2", rounding="stochastic", seed=3,
                                                     index_offset=i), range(0, x.size, 25_000)))
    assert all(np.array_equal(p, s) for p, s in zip(par, serial))
    assert np.array_equal(np.concatenate(chunks), enc_serial)


@pytest.mark.parametrize("fmt", ["fp4_e2m1", "fp8_e4m3fn", "fp16", "bf16", "int4", "fp4r4"])
def test_stochastic_rounding_whole_chunked_dtype_and_repeat(fmt):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((60, 70)) * 3).astype(np.float32)
    whole = numsim.encode(x, fmt, rounding="stochastic", seed=99, random_bits=24)
    assert np.array_equal(whole, numsim.encode(x, fmt, rounding="stochastic", seed=99, random_bits=24))
    assert np.array_equal(whole, numsim.encode(x.astype(np.float64), fmt, rounding="stochastic", seed=99,
                                               random_bits=24))
    flat = x.reshape(-1)
    for step in (7, 1000, 4199):
        parts = [numsim.encode(flat[i:i + step], fmt, rounding="stochastic", seed=99, random_bits=24, index_offset=i)
                 for i in range(0, flat.size, step)]
        assert np.array_equal(np.concatenate(parts), whole.reshape(-1)), step
    # the bits come from (seed, index): a non-contiguous view of the same values draws the same bits
    big = np.zeros((120, 70), np.float32)
    big[::2] = x
    assert np.array_equal(numsim.encode(big[::2], fmt, rounding="stochastic", seed=99, random_bits=24), whole)
    assert not np.array_equal(whole, numsim.encode(x, fmt, rounding="stochastic", seed=100, random_bits=24))


_DIGEST = r"""
import hashlib, numpy as np, numsim
from numsim.units import get_unit, unit_names
rng = np.random.default_rng(11)
h = hashlib.sha256()
for name in unit_names():
    u = get_unit(name)
    fa, fb = numsim.get_format(u.a_fmt), numsim.get_format(u.b_fmt)
    a = rng.integers(0, 2**fa.bits, (23, 19)).astype(fa.dtype)
    b = rng.integers(0, 2**fb.bits, (19, 13)).astype(fb.dtype)
    for f, arr in ((fa, a), (fb, b)):
        if getattr(f, "symmetric", False):
            arr[arr == 2 ** (f.bits - 1)] = 0
    key = getattr(u, "_ctx_key", None)
    ctx = {key: rng.integers(0, 5, 19)} if key else {}
    h.update(name.encode()); h.update(u.gemm_codes(a, b, nthreads=3, **ctx).codes.tobytes())
h.update(numsim.encode(rng.standard_normal(10000), "fp8_e4m3fn", rounding="stochastic", seed=5).tobytes())
print(h.hexdigest())
"""


def test_a_fresh_process_gives_the_same_bits():
    # the child imports the numsim this process imported (a checkout's build, or the installed package)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(numsim.__file__)))
    env = dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    outs = [subprocess.run([sys.executable, "-c", _DIGEST], capture_output=True, text=True, cwd=pkg_parent, env=env,
                           timeout=120) for _ in range(2)]
    for o in outs:
        assert o.returncode == 0, o.stderr
    here = {}
    exec(compile(_DIGEST.replace("print(h.hexdigest())", "here['d'] = h.hexdigest()"), "digest", "exec"),
         {"here": here})
    assert outs[0].stdout.strip() == outs[1].stdout.strip() == here["d"]
