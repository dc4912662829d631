"""numsim.matmul's batched path (numsim.kernels.batch: one ns_imatmul_batch call for every batch entry)
gives the per-GEMM loop's bits: compared with the MAC-level kernel forced per entry (NUMSIM_KERNEL, which
also keeps the per-GEMM loop)."""
import numpy as np
import pytest

from numsim import QTensor, get_unit, matmul


def _codes(rng, shape, fmt):
    from numsim.formats import get_format

    f = get_format(fmt)
    c = rng.integers(0, 2**f.bits, shape).astype(f.dtype)
    if getattr(f, "symmetric", False):
        c[c == 2 ** (f.bits - 1)] = 0
    return c


@pytest.mark.parametrize("name,over", [
    ("int4_int32", dict(a_fmt="int8", b_fmt="int8", widen_bits=32)),
    ("int4_int32", {}),
    ("int4_int32_requant", {}),
])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_batched_matmul_equals_per_gemm_mac_level(monkeypatch, name, over, nthreads):
    u = get_unit(name, **over)
    rng = np.random.default_rng(11)
    a = _codes(rng, (2, 3, 5, 19), u.a_fmt)
    b = _codes(rng, (3, 19, 7), u.b_fmt)
    r = matmul(a, b, u, nthreads=nthreads)
    assert set(r.info["kernel"]) <= {f"int_mac.imatmul.{lv}" for lv in ("amx", "avx512_vnni", "portable")}
    monkeypatch.setenv("NUMSIM_KERNEL", "mac_level")
    ref = matmul(a, b, u, nthreads=1)
    assert set(ref.info["kernel"]) == {"int_mac.mac_level"}
    assert np.array_equal(r.codes, ref.codes) and np.array_equal(r.values, ref.values)
    if ref.out_codes is not None:
        assert np.array_equal(r.out_codes, ref.out_codes)


def test_batched_matmul_with_alignment_shifts(monkeypatch):
    u = get_unit("int4_int32")
    rng = np.random.default_rng(5)
    K = 12
    a = QTensor(_codes(rng, (4, 3, K), u.a_fmt), u.a_fmt, np.ldexp(0.5, rng.integers(0, 3, K)), axis=2)
    b = QTensor(_codes(rng, (4, K, 5), u.b_fmt), u.b_fmt, 0.25)
    r = matmul(a, b, u)
    monkeypatch.setenv("NUMSIM_KERNEL", "mac_level")
    ref = matmul(a, b, u)
    assert np.array_equal(r.codes, ref.codes) and np.array_equal(r.values, ref.values)


def test_batched_matmul_other_units_keep_the_loop():
    u = get_unit("fp8_fp16")
    rng = np.random.default_rng(2)
    a = rng.integers(0, 120, (3, 4, 8)).astype(np.uint8)
    b = rng.integers(0, 120, (3, 8, 2)).astype(np.uint8)
    r = matmul(a, b, u)
    for i in range(3):
        one = matmul(a[i], b[i], u)
        assert np.array_equal(r.codes[i], one.codes)
