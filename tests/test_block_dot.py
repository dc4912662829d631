"""Block-scaled dot units (issue 17): the Blackwell presets reproduce every MMA-Sim vector; the MAC-level
kernel equals the exact reference (numsim.reference.block_dot) and the numpy kernel equals the MAC level
on every preset and variants, with edge codes, specials and wide scales; bad inputs name the argument."""
import dataclasses
import pathlib
import zlib

import numpy as np
import pytest

import numsim
import numsim.kernels as kernels
from numsim import NumsimError
from numsim.reference.block_dot import block_dot_ref
from numsim.units.block_dot import BlockDotUnit

DATA = pathlib.Path(__file__).resolve().parents[1] / ".." / ".." / "shared" / "data" / "mmasim"
if not DATA.exists():
    DATA = pathlib.Path("/work/shared/data/mmasim")

BLOCK_PRESETS = [n for n in numsim.unit_names() if isinstance(numsim.get_unit(n), BlockDotUnit)]


def _load(name):
    f = DATA / name
    if not f.exists():
        pytest.skip(f"MMA-Sim vectors not present: {f}")
    return np.load(f)


def _unpack_fp4(pa, axis):
    """Two e2m1 codes per byte along K: element 2i in the low nibble, 2i+1 in the high one."""
    lo, hi = pa & 15, pa >> 4
    return np.stack([lo, hi], axis=axis + 1).reshape(
        pa.shape[:axis] + (pa.shape[axis] * 2,) + pa.shape[axis + 1:]).astype(np.uint8)


FILES = [("tcgen05_mxf8_e4m3_ue8m0.npz", "blackwell_tcgen05_mxf8f6f4_block32"),
         ("tcgen05_nvfp4_e2m1_ue4m3.npz", "blackwell_tcgen05_mxf4nvf4_block16")]


@pytest.mark.slow
@pytest.mark.parametrize("file,preset", FILES)
def test_blackwell_presets_reproduce_every_mmasim_vector(file, preset):
    _check_vectors(file, preset, 1)


@pytest.mark.parametrize("file,preset", FILES)
def test_blackwell_presets_reproduce_mmasim_vectors_sample(file, preset):
    """Every 13th tile (all 8 families); the slow test above runs all 1400 tiles of each file."""
    _check_vectors(file, preset, 13)


def _check_vectors(file, preset, stride):
    z = _load(file)
    u = numsim.get_unit(preset)
    A, B = z["A"], z["B"]
    if "nvfp4" in file:
        A, B = _unpack_fp4(A, 2), _unpack_fp4(B, 1)
    bad = 0
    for t in range(0, A.shape[0], stride):
        r = u.gemm_codes(A[t], B[t], c=z["C"][t], block_scale_a=z["scale_A"][t], block_scale_b=z["scale_B"][t])
        assert r.info["kernel"] == "block_dot.numpy"
        bad += int(np.count_nonzero(r.codes != z["D"][t]))
    assert bad == 0
    # the MAC level on a stratified sample (every family)
    for t in range(0, A.shape[0], 97 * stride):
        r = kernels.mac_level_gemm(u, A[t], B[t], c=z["C"][t],
                                   ctx={"block_scale_a": z["scale_A"][t], "block_scale_b": z["scale_B"][t]})
        assert np.array_equal(r.codes, z["D"][t]), t


def test_mmasim_zero_is_positive_minimal_case():
    """A negative sum below fp32's smallest subnormal: MMA-Sim's RZ is math.trunc (an int), so D = +0,
    not -0 (tiles 389, 461, ... of family 5 in tcgen05_mxf8_e4m3_ue8m0.npz)."""
    u = numsim.get_unit("blackwell_tcgen05_mxf8f6f4_block32")
    a = np.zeros((1, 32), np.uint8)
    b = np.zeros((32, 1), np.uint8)
    a[0, 0], b[0, 0] = 0x01, 0x81           # 2^-9 x -2^-9, scales 2^-66 each: -2^-150, kept (xmax = -126 from
    sa, sb = np.full((1, 1), 61, np.uint8), np.full((1, 1), 61, np.uint8)   # the zero c), below fp32's 2^-149
    r = u.gemm_codes(a, b, block_scale_a=sa, block_scale_b=sb)
    assert int(r.codes[0, 0]) == 0
    assert int(numsim.get_unit(u, zero_sign="signed").gemm_codes(a, b, block_scale_a=sa, block_scale_b=sb)
               .codes[0, 0]) == 0x80000000


def _params(u):
    d = {f.name: getattr(u, f.name) for f in dataclasses.fields(u)}
    for k in ("a_fmt", "b_fmt", "acc_fmt", "a_scale_fmt", "b_scale_fmt"):
        d[k] = d[k].name
    return d


def _elem_codes(rng, fmt, shape):
    fmt = numsim.get_format(fmt)
    table = numsim.decode(np.arange(2 ** fmt.bits, dtype=np.int64), fmt).astype(np.float64)
    fin = np.nonzero(np.isfinite(table))[0]
    mags = np.abs(table[fin])
    edge = np.concatenate([fin[mags >= np.sort(mags)[-2]], fin[mags == 0], fin[mags == mags[mags > 0].min()]])
    codes = rng.choice(fin, size=shape)
    pick = rng.random(shape) < 0.3
    codes[pick] = rng.choice(edge, size=int(pick.sum()))
    return codes.astype(fmt.dtype)


def _scale_codes(rng, u, sfmt, shape, special):
    if sfmt.name == "e8m0":
        lo = rng.integers(0, 255, shape)
        mid = rng.integers(120, 135, shape)
        s = np.where(rng.random(shape) < 0.6, mid, lo)
    else:
        s = rng.integers(0, 0x7F, shape)
        s = np.where(rng.random(shape) < 0.1, 0, s)
        if u.scale_sign == "ignore":
            s = s | (rng.integers(0, 2, shape) << 7)
    if special:
        s = np.where(rng.random(shape) < 0.05, sfmt.nan_code, s)
    return s.astype(np.uint8)


def _problem(rng, u, M, K, N, special):
    a = _elem_codes(rng, u.a_fmt, (M, K))
    b = _elem_codes(rng, u.b_fmt, (K, N))
    nb = -(-K // u.block_size)
    sa = _scale_codes(rng, u, u.a_scale_fmt, (M, nb), special)
    sb = _scale_codes(rng, u, u.b_scale_fmt, (nb, N), special)
    c = numsim.encode(rng.standard_normal((M, N)) * 2.0 ** rng.integers(-140, 100, (M, N)), "fp32")
    c[rng.random((M, N)) < 0.2] = 0
    if special:
        c[rng.random((M, N)) < 0.05] = 0x7F800000
        c[rng.random((M, N)) < 0.03] = 0x7FC00000
    return a, b, sa, sb, c


VARIANTS = [("blackwell_tcgen05_mxf8f6f4_block32", {"a_fmt": "fp8_e5m2", "b_fmt": "fp6_e3m2"}),
            ("blackwell_tcgen05_mxf8f6f4_block32", {"term_rounding": "nearest_even", "acc_rounding": "nearest_even",
                                                    "zero_exponent": None, "zero_sign": "signed"}),
            ("blackwell_tcgen05_mxf8f6f4_block32", {"a_fmt": "int8", "b_fmt": "fp6_e2m3", "term_rounding": "toward_neg",
                                                    "acc_overflow": "saturate", "frac_bits": 12}),
            ("blackwell_tcgen05_mxf4nvf4_block16", {"frac_bits": 20, "term_rounding": "nearest_even", "k_step": 32}),
            ("blackwell_tcgen05_mxf4nvf4_block16", {"acc_fmt": "bf16", "acc_rounding": "nearest_even"}),
            ("ocp_mxfp8_e4m3_dot", {"acc_fmt": "fp16", "acc_rounding": "toward_zero"})]


def _cases():
    return [(n, {}) for n in BLOCK_PRESETS] + VARIANTS


@pytest.mark.parametrize("name,kw", _cases(), ids=[f"{n}{kw}" for n, kw in _cases()])
def test_mac_level_equals_reference_and_numpy_equals_mac_level(name, kw):
    u = numsim.get_unit(name, **kw)
    if numsim.get_format(u.acc_fmt).name != "fp32":
        conv = None
    rng = np.random.default_rng(zlib.crc32(repr((name, tuple(sorted(kw.items())))).encode()))
    params = _params(u)
    for (M, K, N, special) in [(3, 64, 4, False), (2, 70, 3, True), (4, 128, 2, True), (1, 5, 1, False)]:
        a, b, sa, sb, c = _problem(rng, u, M, K, N, special)
        acc = numsim.get_format(u.acc_fmt)
        if acc.name != "fp32":
            c = numsim.encode(numsim.decode(c, "fp32").astype(np.float64), acc, overflow="to_inf")
        ctx = {"block_scale_a": sa, "block_scale_b": sb}
        mac = kernels.mac_level_gemm(u, a, b, c=c, ctx=ctx)
        for i in range(M):
            for j in range(N):
                want = block_dot_ref(params, a[i], b[:, j], sa[i], sb[:, j], int(c[i, j]))
                assert int(mac.codes[i, j]) == want, (name, kw, i, j)
        p = u.problem(a, b, c=c, ctx=ctx)
        if kernels.get_kernel("block_dot.numpy").domain(u, p) is None:
            fast = kernels.gemm(u, a, b, c=c, ctx=ctx, kernel="block_dot.numpy")
            assert np.array_equal(fast.codes, mac.codes), (name, kw, M, K, N)


def test_numpy_kernel_on_gemm_sizes_equals_mac_level():
    rng = np.random.default_rng(5)
    for name in ("blackwell_tcgen05_mxf8f6f4_block32", "blackwell_tcgen05_mxf4nvf4_block16", "ocp_mxfp4_dot"):
        u = numsim.get_unit(name)
        a, b, sa, sb, c = _problem(rng, u, 24, 256, 20, True)
        ctx = {"block_scale_a": sa, "block_scale_b": sb}
        fast = u.gemm_codes(a, b, c=c, **ctx)
        assert fast.info["kernel"] == "block_dot.numpy"
        assert np.array_equal(fast.codes, kernels.mac_level_gemm(u, a, b, c=c, ctx=ctx).codes)


def test_bad_inputs_name_the_argument():
    u = numsim.get_unit("blackwell_tcgen05_mxf4nvf4_block16")
    a = np.zeros((2, 32), np.uint8)
    b = np.zeros((32, 3), np.uint8)
    with pytest.raises(NumsimError, match="block_scale_a"):
        u.gemm_codes(a, b, block_scale_a=np.zeros((2, 3), np.uint8))
    with pytest.raises(NumsimError, match="block_scale_b"):
        u.gemm_codes(a, b, block_scale_b=np.zeros((2, 3), np.float32))
    with pytest.raises(NumsimError, match="block_scale_a"):
        numsim.get_unit(u, scale_sign="error").gemm_codes(a, b, block_scale_a=np.full((2, 2), 0x80, np.uint8))
    with pytest.raises(NumsimError, match="align_shift"):
        u.gemm_codes(a, b, align_shift=np.zeros(32))
    with pytest.raises(NumsimError, match="group_size"):
        numsim.get_unit(u, group_size=3)
    with pytest.raises(NumsimError, match="term_exponent"):
        numsim.get_unit(u, term_exponent="product")
    with pytest.raises(NumsimError, match="a_fmt"):
        numsim.get_unit(u, a_fmt="fp16")
