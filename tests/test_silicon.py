"""Issue 19: the tensor-core and matrix-core presets of other generations.

- Every preset with MMA-Sim reference vectors (../shared/data/mmasim, an independent model nobody here
  wrote) reproduces 100% of them, family by family.
- MatrixCoreUnit (AMD CDNA) equals numsim.reference.mfma (exact Fractions) on random bit patterns,
  special values and subnormals, for every AMD preset and variants the vectors do not reach.
"""
import os
import zlib

import numpy as np
import pytest

import numsim
from numsim.errors import NumsimError
from numsim.formats import get_format
from numsim.reference import mfma as ref
from numsim.units.presets_silicon import tf32_codes_from_fp32

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mmasim")
DATA = os.environ.get("NUMSIM_MMASIM_DATA", DATA)

VECTORS = [
    ("tcgen05_f16_f32.npz", "blackwell_tcgen05_f16"),
    ("tcgen05_bf16_f32.npz", "blackwell_tcgen05_bf16"),
    ("tcgen05_e4m3_f32.npz", "blackwell_tcgen05_e4m3"),
    ("tcgen05_e2m1_f32.npz", "blackwell_tcgen05_e2m1"),
    ("ampere_mma_m16n8k16_f32_f16.npz", "ampere_mma_f16"),
    ("ampere_mma_m16n8k8_f32_tf32.npz", "ampere_mma_tf32"),
    ("cdna3_mfma_f32_16x16x16_f16.npz", "cdna3_mfma_f16"),
    ("cdna3_mfma_f32_16x16x16_bf16.npz", "cdna3_mfma_bf16"),
    ("cdna3_mfma_f32_16x16x32_fp8_fp8.npz", "cdna3_mfma_fp8"),
]


def _load(fname):
    path = os.path.join(DATA, fname)
    if not os.path.exists(path):
        pytest.skip(f"MMA-Sim vectors not present at {path} (shared data of this project)")
    return np.load(path)


def replay(unit, z, tf32=False):
    A, B, C, D, fam = z["A"], z["B"], z["C"], z["D"], z["family"]
    if tf32:
        A, B = tf32_codes_from_fp32(A), tf32_codes_from_fp32(B)
    matched = np.zeros(8, np.int64)
    total = np.zeros(8, np.int64)
    for t in range(A.shape[0]):
        got = unit.gemm_codes(A[t], B[t], C[t], nthreads=1).codes
        matched[fam[t]] += int((got == D[t]).sum())
        total[fam[t]] += D[t].size
    return matched, total


@pytest.mark.parametrize("fname,preset", VECTORS, ids=[p for _, p in VECTORS])
def test_preset_reproduces_every_mmasim_vector(fname, preset):
    z = _load(fname)
    matched, total = replay(numsim.get_unit(preset), z, tf32="tf32" in preset)
    assert (total > 0).all()
    assert (matched == total).all(), f"{preset}: per-family matches {matched} of {total}"


@pytest.mark.parametrize("fname,preset", VECTORS[:6], ids=[p for _, p in VECTORS[:6]])
def test_nvidia_presets_on_the_scalar_kernel_too(fname, preset, monkeypatch):
    monkeypatch.setenv("NUMSIM_KERNEL", "fused_adder.mac_level")
    z = _load(fname)
    sub = {k: z[k][::7] for k in ("A", "B", "C", "D", "family")}
    matched, total = replay(numsim.get_unit(preset), sub, tf32="tf32" in preset)
    assert (matched == total).all()


def test_e2m1_subnormal_exponent_is_what_decides_the_two_conventions():
    """The e2m1 vectors come with MMA-Sim's rule (0.5 = 0.1b x 2^0) and the e4m3-embedding one (0.5 =
    1.0b x 2^-1): subnormal_exponent='format_min' gives the first, 'normalized' the second, bit for bit."""
    z = _load("tcgen05_e2m1_f32.npz")
    alt = z["D"].copy().ravel()
    alt[z["D_e4m3embed_idx"]] = z["D_e4m3embed_bits"]
    alt = alt.reshape(z["D"].shape)
    assert z["D_e4m3embed_idx"].size > 0
    u = numsim.get_unit("blackwell_tcgen05_e2m1", subnormal_exponent="normalized")
    m, t = replay(u, {**{k: z[k] for k in ("A", "B", "C", "family")}, "D": alt})
    assert (m == t).all()
    m, t = replay(u, z)
    assert (m < t).any()                      # and it is not MMA-Sim's own convention


AMD = ["cdna3_mfma_f16", "cdna3_mfma_bf16", "cdna3_mfma_fp8", "cdna3_mfma_bf8", "cdna3_mfma_xf32",
       "cdna2_mfma_f16", "cdna2_mfma_bf16", "cdna1_mfma_f16", "cdna1_mfma_bf16"]


def _codes(rng, fmt, shape):
    """Random bit patterns (every class) mixed with small normal values and subnormals."""
    f = get_format(fmt)
    raw = rng.integers(0, 2 ** f.bits, size=shape, dtype=np.int64)
    small = rng.integers(0, 2 ** (f.bits - 2), size=shape, dtype=np.int64)      # sign 0, low fields
    sub = rng.integers(0, 2 ** f.man_bits, size=shape) | (rng.integers(0, 2, size=shape) << (f.bits - 1))
    pick = rng.integers(0, 3, size=shape)
    out = np.where(pick == 0, raw, np.where(pick == 1, small | ((raw >> 1) & (1 << (f.bits - 1))), sub))
    return out.astype(f.dtype)


def _acc(rng, shape):
    raw = rng.integers(0, 2 ** 32, size=shape, dtype=np.int64)
    small = rng.integers(0, 2 ** 23, size=shape) | (rng.integers(0, 2, size=shape) << 31)   # subnormals
    normal = (rng.integers(100, 150, size=shape) << 23) | rng.integers(0, 2 ** 23, size=shape)
    pick = rng.integers(0, 4, size=shape)
    out = np.where(pick == 0, raw, np.where(pick == 1, small, np.where(pick == 2, normal, 0)))
    return out.astype(np.uint32)


@pytest.mark.parametrize("preset", AMD)
@pytest.mark.parametrize("overrides", [{}, {"k_step": 2}, {"zero_exponent": -140}],
                         ids=["preset", "k2", "zero_exp"])
def test_matrix_core_unit_equals_the_exact_reference(preset, overrides):
    unit = numsim.get_unit(preset, **overrides)
    rng = np.random.default_rng(zlib.crc32(f"{preset}{sorted(overrides.items())}".encode()))
    f32 = get_format("fp32")
    M, N, K = 4, 3, 2 * unit.k_step + 1
    a = _codes(rng, unit.a_fmt, (M, K))
    b = _codes(rng, unit.b_fmt, (K, N))
    c = _acc(rng, (M, N))
    got = unit.gemm_codes(a, b, c, nthreads=1).codes
    for i in range(M):
        for j in range(N):
            want = ref.mfma_dot(a[i], b[:, j], int(c[i, j]), unit, unit.a_fmt, unit.b_fmt, f32)
            assert int(got[i, j]) == want, (preset, overrides, i, j, hex(int(got[i, j])), hex(want))


def test_matrix_core_step_and_trace_follow_the_groups():
    u = numsim.get_unit("cdna3_mfma_f16")
    rng = np.random.default_rng(7)
    a = _codes(rng, "fp16", (1, 32))
    b = _codes(rng, "fp16", (32, 1))
    r = u.dot(a[0], b[:, 0], trace=True)
    st = None
    for g, want in zip(range(0, 32, 8), r.trace):
        st = u.step(st, a[0, g:g + 8], b[g:g + 8, 0])
        assert st == want
    assert r.code == r.trace[-1]


def test_bf16_product_past_fp32_range_is_inf_and_counted():
    u = numsim.get_unit("cdna3_mfma_bf16")
    big = np.array([[0x7F00, 0x7F00]], np.uint16)           # 2^127 each: products 2^254
    r = u.gemm_codes(big, big.T.copy(), nthreads=1)
    assert int(r.codes[0, 0]) == 0x7F800000
    assert r.overflow_count == 1


def test_bad_parameters_and_inputs_name_the_argument():
    with pytest.raises(NumsimError, match="datapath"):
        numsim.get_unit("cdna3_mfma_f16", datapath="tree")
    with pytest.raises(NumsimError, match="flush_subnormals"):
        numsim.get_unit("cdna3_mfma_f16", flush_subnormals=True)
    with pytest.raises(NumsimError, match="even_odd_split"):
        numsim.get_unit("cdna3_mfma_fp8", k_step=3)
    with pytest.raises(NumsimError, match="subnormal_exponent"):
        numsim.get_unit("blackwell_tcgen05_f16", subnormal_exponent="min")
    with pytest.raises(NumsimError, match="bits"):
        tf32_codes_from_fp32(np.zeros(3, np.float32))
    with pytest.raises(NumsimError, match="a_fmt"):
        numsim.get_unit("cdna3_mfma_f16", a_fmt="int8")


def test_every_new_preset_runs_and_describes_itself():
    from numsim.units.presets_silicon import AMD_PRESETS, NVIDIA_PRESETS

    rng = np.random.default_rng(3)
    for name in {**NVIDIA_PRESETS, **AMD_PRESETS}:
        u = numsim.get_unit(name)
        assert u.describe().startswith(name)
        a = np.zeros((2, 8), get_format(u.a_fmt).dtype)
        b = np.zeros((8, 3), get_format(u.b_fmt).dtype)
        r = u.gemm_codes(a, b, nthreads=1)
        assert r.codes.shape == (2, 3) and not r.codes.any(), name
        assert rng is not None
