"""The float64 -> integer-format encode loops (csrc/encode_f64.c) give the generic path's bits, and the
batched GEMM drivers (csrc/gemm_batch.c) give each entry's single-call bits."""
import zlib

import numpy as np
import pytest

from numsim._ffi import cptr, ffi, lib
from numsim.codec import c_encode_opts, c_format, encode
from numsim.errors import NumsimError
from numsim.formats import get_format


def _generic(x, fmt, **kw):
    f, o = c_format(fmt), c_encode_opts(fmt, **kw)
    out = np.empty(x.shape, fmt.dtype)
    err = ffi.new("int64_t *")
    st = lib.ns_encode_f64_generic(cptr("double *", x), x.size, f, o, cptr("void *", out), fmt.dtype.itemsize, err)
    return st, out


@pytest.mark.parametrize("name", ["int8", "int4", "uint4", "int16", "int32", "uint8"])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic", "toward_zero", "nearest_away", "toward_neg",
                                      "toward_pos"])
def test_int_encode_matches_generic(name, rounding):
    fmt = get_format(name)
    rng = np.random.default_rng(zlib.crc32(repr((name, rounding)).encode()))
    for overflow in ("saturate", "wrap", "error"):
        for scale in (1e-30, 1e-3, 0.5, 3, 100, 1e5, 1e12, 1e300):
            x = rng.standard_normal(3000) * scale
            x[:12] = [0.5, -0.5, 1.5, -2.5, 0.0, -0.0, 2**-1074, -2**-1060, 127.5, -128.5, 2.0**52, -2.0**63]
            kw = dict(rounding=rounding, overflow=overflow, seed=int(rng.integers(0, 2**63)),
                      random_bits=int(rng.integers(1, 33)), index_offset=int(rng.integers(0, 1000)))
            st, want = _generic(x, fmt, **kw)
            if st:
                with pytest.raises(NumsimError):
                    encode(x, fmt, **kw)
            else:
                assert np.array_equal(encode(x, fmt, **kw), want)


def test_int_encode_specials_go_to_the_generic_path():
    fmt = get_format("int8")
    x = np.array([1.0, np.nan, 2.0])
    with pytest.raises(NumsimError, match="NaN"):
        encode(x, fmt)
    assert encode(x, fmt, nan="zero").tolist() == [1, 0, 2]


def test_imatmul_batch_equals_single_calls():
    from numsim.kernels.int_imatmul import _table

    rng = np.random.default_rng(3)
    fmt = get_format("int8")
    t = _table(fmt)[0]
    B, M, K, N = 5, 7, 33, 9
    a = rng.integers(0, 256, (B, M, K)).astype(np.uint8)
    b = rng.integers(0, 256, (B, K, N)).astype(np.uint8)
    for nthreads in (1, 2, 3):
        out = np.empty((B, M, N), np.int32)
        vals = np.empty((B, M, N), np.float64)
        st = lib.ns_imatmul_batch(cptr("uint8_t *", a), 8, cptr("int32_t *", t), ffi.NULL, cptr("uint8_t *", b), 8,
                                  cptr("int32_t *", t), ffi.NULL, B, M, K, N, ffi.NULL, cptr("int32_t *", out),
                                  cptr("double *", vals), nthreads, -1)
        assert st == 0
        for i in range(B):
            o1 = np.empty((M, N), np.int32)
            v1 = np.empty((M, N), np.float64)
            ai, bi = np.ascontiguousarray(a[i]), np.ascontiguousarray(b[i])
            assert lib.ns_imatmul(cptr("uint8_t *", ai), 8, cptr("int32_t *", t), ffi.NULL, cptr("uint8_t *", bi), 8,
                                  cptr("int32_t *", t), ffi.NULL, M, K, N, ffi.NULL, cptr("int32_t *", o1),
                                  cptr("double *", v1), 1, -1) == 0
            assert np.array_equal(out[i], o1) and np.array_equal(vals[i], v1)
            exact = t[a[i]].astype(np.int64) @ t[b[i]].astype(np.int64)
            assert np.array_equal(o1, exact)
