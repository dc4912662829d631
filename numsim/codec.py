"""encode / decode: numpy arrays of real values <-> codes, computed by the C format kernels."""
from __future__ import annotations

import functools

import numpy as np

from . import _abi
from ._ffi import cptr, ffi, lib
from .errors import NumsimError, bad
from .formats import FloatFormat, IntFormat, get_format
from .rounding import (NAN_POLICIES, OVERFLOW_POLICIES, ROUNDING_MODES, UNDERFLOW_POLICIES, nan_policy,
                       overflow_policy, rounding_mode, underflow_policy)


def c_format(fmt):
    """The ns_format struct of a descriptor (kept alive by the caller)."""
    f = ffi.new("ns_format *")
    f.bits = fmt.bits
    if isinstance(fmt, IntFormat):
        f.kind = lib.NS_KIND_INT
        f.is_signed = int(fmt.signed)
        f.symmetric = int(fmt.symmetric)
    else:
        f.kind = lib.NS_KIND_FLOAT
        f.is_signed = 1
        f.exp_bits = fmt.exp_bits
        f.man_bits = fmt.man_bits
        f.bias = fmt.bias
        f.radix_log2 = 2 if fmt.radix == 4 else 1
        f.subnormals = int(fmt.subnormals)
        f.specials = _abi.SPECIALS[fmt.specials]
        f.phase = fmt.phase
        f.r4_threshold = 0 if fmt.r4_threshold == "log" else 1
        f.r4_zero = 0 if fmt.r4_zero == "exp0" else 1
    return f


def c_encode_opts(fmt, rounding="nearest_even", overflow=None, seed=0, random_bits=32, nan="error",
                  underflow="round", index_offset=0):
    o = ffi.new("ns_encode_opts *")
    o.rounding = ROUNDING_MODES[rounding_mode(rounding)]
    o.overflow = OVERFLOW_POLICIES[overflow_policy(overflow, fmt)]
    o.nan_policy = NAN_POLICIES[nan_policy(nan)]
    o.underflow = UNDERFLOW_POLICIES[underflow_policy(underflow)]
    if not isinstance(random_bits, (int, np.integer)) or not 1 <= int(random_bits) <= 32:
        raise bad("random_bits", "an integer in 1..32", random_bits)
    o.random_bits = int(random_bits)
    # the seed keys the 64-bit counter-based generator: one seed, one key (no silent wrap of -1 to 2^64 - 1)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)) or not 0 <= int(seed) < 2**64:
        raise bad("seed", "an integer in [0, 2^64)", repr(seed))
    o.seed = int(seed)
    if not isinstance(index_offset, (int, np.integer)) or isinstance(index_offset, bool) or \
            not 0 <= int(index_offset) < 2**64:
        raise bad("index_offset", "an integer in [0, 2^64)", repr(index_offset))
    o.index_offset = int(index_offset)
    return o


def as_real_array(values, arg="values") -> np.ndarray:
    """Real input as float32 or float64 without changing any value."""
    try:
        a = np.asarray(values)
    except Exception as e:  # ragged lists and the like
        raise bad(arg, "an array of real numbers", repr(e)) from None
    if a.dtype == np.float64 or a.dtype == np.float32:
        return a
    if a.dtype == np.float16:
        return a.astype(np.float32)  # exact
    if a.dtype.kind in "iu":
        if a.dtype.itemsize <= 4:
            return a.astype(np.float64)  # exact
        if a.size and np.max(np.abs(a.astype(np.float64))) > 2.0**53:
            raise bad(arg, "integers of magnitude <= 2^53 (exact in float64)", "larger values")
        return a.astype(np.float64)
    if a.dtype == np.bool_:
        raise bad(arg, "a real (float or integer) array", "bool")
    raise bad(arg, "a real array of float16/float32/float64 or integers", f"dtype {a.dtype}")


_STATUS_MSG = {lib.NS_ERR_OVERFLOW: "overflow", lib.NS_ERR_NAN: "NaN", lib.NS_ERR_INF: "infinity",
               lib.NS_ERR_CODE: "code out of range"}


def _raise_status(st, idx, shape, arg, fmt, src):
    pos = np.unravel_index(int(idx), shape) if shape else ()
    what = _STATUS_MSG.get(st, f"status {st}")
    value = ""
    if src is not None:
        value = f" (value {src.reshape(-1)[int(idx)]!r})"
    if st == lib.NS_ERR_NAN:
        raise NumsimError(f"{arg}: NaN at index {tuple(int(p) for p in pos)}{value} cannot be encoded in {fmt}, "
                          f"which has no NaN; pass nan='zero' to map NaN to zero")
    if st == lib.NS_ERR_INF:
        raise NumsimError(f"{arg}: infinity at index {tuple(int(p) for p in pos)} cannot be encoded in {fmt} "
                          f"under this overflow policy")
    raise NumsimError(f"{arg}: {what} at index {tuple(int(p) for p in pos)}{value} for format {fmt}")


def encode(values, fmt, rounding="nearest_even", overflow=None, seed=0, random_bits=32, nan="error",
           underflow="round", index_offset=0) -> np.ndarray:
    """Round real values into `fmt` and return their codes (smallest uint dtype of the format).

    Each value is rounded once from its exact float32/float64 value. `rounding`: nearest_even,
    nearest_away, toward_zero, toward_neg, toward_pos, stochastic. `overflow`: saturate, wrap
    (integers), to_inf (formats with inf), to_nan, error; None is to_inf where the format has inf,
    else saturate. Stochastic rounding draws `random_bits` bits for element i (flat C-order index)
    from the counter-based generator keyed by (seed, index_offset + i); seed: an integer in [0, 2^64).
    """
    fmt = get_format(fmt)
    a = as_real_array(values)
    f = c_format(fmt)
    o = c_encode_opts(fmt, rounding, overflow, seed, random_bits, nan, underflow, index_offset)
    shape = a.shape                      # np.ascontiguousarray makes 0-d arrays 1-d
    a = np.ascontiguousarray(a)
    if int(index_offset) + a.size > 2**64:
        raise bad("index_offset", "index_offset + size <= 2^64", f"{index_offset} + {a.size}")
    out = np.empty(a.shape, dtype=fmt.dtype)
    err = ffi.new("int64_t *")
    nbytes = fmt.dtype.itemsize
    if a.dtype == np.float32:
        st = lib.ns_encode_f32(cptr("float *", a), a.size, f, o, cptr("void *", out), nbytes, err)
    else:
        st = lib.ns_encode_f64(cptr("double *", a), a.size, f, o, cptr("void *", out), nbytes, err)
    if st:
        _raise_status(st, err[0], shape, "values", fmt, a)
    return out.reshape(shape)


def check_codes(codes, fmt, arg="codes") -> np.ndarray:
    """Codes as a contiguous array of the format's uint dtype; raises if any is out of range."""
    fmt = get_format(fmt)
    try:
        c = np.asarray(codes)
    except Exception as e:
        raise bad(arg, "an integer array of codes", repr(e)) from None
    if c.dtype.kind not in "iu":
        raise bad(arg, f"an integer array of {fmt} codes", f"dtype {c.dtype}")
    if c.size:
        lo, hi = int(c.min()), int(c.max())
        if lo < 0 or hi >= 2**fmt.bits:
            bad_at = np.argwhere((c < 0) | (c >= 2**fmt.bits))[0]
            raise NumsimError(f"{arg}: code {int(c[tuple(bad_at)])} at index {tuple(int(i) for i in bad_at)} is "
                              f"out of range for {fmt} ({fmt.bits} bits: 0..{2**fmt.bits - 1})")
        if isinstance(fmt, IntFormat) and fmt.symmetric:
            neg = 2 ** (fmt.bits - 1)
            if np.any(c == neg):
                bad_at = np.argwhere(c == neg)[0]
                raise NumsimError(f"{arg}: code {neg} at index {tuple(int(i) for i in bad_at)} is the excluded "
                                  f"most negative value of the symmetric format {fmt}")
    return np.ascontiguousarray(c.astype(fmt.dtype, copy=False)).reshape(c.shape)


@functools.lru_cache(maxsize=64)
def _decode_table(fmt) -> np.ndarray:
    """Every code's value, computed by the C decoder once per format (formats of <= 16 bits)."""
    codes = np.arange(2**fmt.bits, dtype=fmt.dtype)
    out = np.empty(codes.shape, dtype=np.float64)
    err = ffi.new("int64_t *")
    lib.ns_decode(cptr("void *", codes), codes.dtype.itemsize, codes.size, c_format(fmt), cptr("double *", out), err)
    out.flags.writeable = False
    return out


def decode(codes, fmt) -> np.ndarray:
    """float64 values of codes (exact for every format up to fp32)."""
    fmt = get_format(fmt)
    c = check_codes(codes, fmt)
    if fmt.bits <= 16 and c.size >= 256:
        return _decode_table(fmt)[c]
    if (isinstance(fmt, FloatFormat) and (fmt.exp_bits, fmt.man_bits, fmt.bias, fmt.radix, fmt.subnormals,
                                          fmt.specials) == (8, 23, 127, 2, True, "ieee")):
        # IEEE binary32: numpy's float32 -> float64 widening is exact (NaNs keep sign and payload)
        with np.errstate(invalid="ignore"):   # signaling NaNs widen quietly, as the C decoder does
            return c.view(np.float32).astype(np.float64)
    if isinstance(fmt, IntFormat) and fmt.bits <= 32:
        # wide integer codes (accumulators): two's complement or unsigned, exact in float64
        if not fmt.signed:
            return c.astype(np.float64)
        if fmt.bits == 32:
            return c.view(np.int32).astype(np.float64)
        v = c.astype(np.int64)
        v -= ((v >> (fmt.bits - 1)) & 1) << fmt.bits
        return v.astype(np.float64)
    out = np.empty(c.shape, dtype=np.float64)
    err = ffi.new("int64_t *")
    st = lib.ns_decode(cptr("void *", c), c.dtype.itemsize, c.size, c_format(fmt), cptr("double *", out), err)
    if st:
        _raise_status(st, err[0], c.shape, "codes", fmt, None)
    return out


def quantize(values, fmt, **kw) -> np.ndarray:
    """decode(encode(values)): the nearest representable values under the given mode (float64)."""
    return decode(encode(values, fmt, **kw), fmt)


__all__ = ["encode", "decode", "quantize", "check_codes", "FloatFormat", "IntFormat"]
