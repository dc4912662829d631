"""Seeded operand and accumulator codes with the edge values mixed in: what the GPU-vs-CPU bit checks
feed both kernels (tests/test_gpu_triton.py, tools/gpu/check.py)."""
from __future__ import annotations

import numpy as np

from ..codec import decode


def edge_codes(fmt):
    """Codes of a format's edge values: +-0, +-1, the largest and smallest magnitudes (subnormals),
    inf and NaN codes (a few)."""
    t = decode(np.arange(2**fmt.bits, dtype=np.uint32), fmt).astype(np.float64)
    fin = np.isfinite(t)
    picks = set()
    for v in (0.0, 1.0, -1.0):
        picks.update(np.flatnonzero(t == v)[:1].tolist())
    picks.update(np.flatnonzero((t == 0) & np.signbit(t)).tolist())
    if fin.any():
        mag = np.where(fin, np.abs(t), np.nan)
        picks.update(np.flatnonzero(mag == np.nanmax(mag)).tolist())
        nz = np.where(mag > 0, mag, np.nan)
        if np.isfinite(nz).any():
            picks.update(np.flatnonzero(nz == np.nanmin(nz)).tolist())
    picks.update(np.flatnonzero(~fin).tolist()[:4])
    return np.array(sorted(picks), np.uint32)


def operands(unit, M, K, N, rng, edge=0.2):
    """(a (M, K), b (K, N)) uint32 codes: uniform over all codes, a fraction `edge` replaced by edge codes."""
    a = rng.integers(0, 2**unit.a_fmt.bits, (M, K)).astype(np.uint32)
    b = rng.integers(0, 2**unit.b_fmt.bits, (K, N)).astype(np.uint32)
    ea, eb = edge_codes(unit.a_fmt), edge_codes(unit.b_fmt)
    ma, mb = rng.random(a.shape) < edge, rng.random(b.shape) < edge
    a[ma] = rng.choice(ea, int(ma.sum()))
    b[mb] = rng.choice(eb, int(mb.sum()))
    return a, b


def accumulators(unit, M, N, rng):
    """(M, N) uint32 initial accumulator codes: uniform, with +-0, the smallest subnormals, +-inf and
    NaNs with payloads (signalling ones too) first for a float accumulator, and values next to the
    INT32 limits in the first row for an integer one."""
    bits = unit.acc_fmt.bits
    c = rng.integers(0, 2**bits, (M, N), dtype=np.int64).astype(np.uint32)
    if unit.acc_fmt.kind == "int":
        c[0, :] = (2**31 - 5 - rng.integers(0, 4, N)) if bits == 32 else c[0, :]
        return c
    f = unit.acc_fmt
    inf = ((1 << f.exp_bits) - 1) << f.man_bits
    special = [0, 1 << (bits - 1), 1, (1 << (bits - 1)) | 1,
               inf, inf | (1 << (bits - 1)), inf | 1, inf | (1 << (f.man_bits - 1)) | 5]
    n = min(len(special), c.size)
    c.ravel()[:n] = special[:n]
    return c
