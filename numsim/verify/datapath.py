"""The datapaths under test, as vector calls into the C kernels: the one place where the verification
library calls `lib.*` directly. Each function only moves arrays in and out; the arithmetic is the C
kernels' own (csrc/units.c, driven through the plain loops of csrc/verify.c).
"""
from __future__ import annotations

import numpy as np

from .._ffi import cptr, ffi, lib
from ..rounding import ROUNDING_MODES


def c_f16_add(a, b, mode="nearest_even") -> np.ndarray:
    """ns_f16_add over equal-length code arrays (or broadcastable ones)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.uint16), np.asarray(b, dtype=np.uint16))
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    out = np.empty(a.shape, dtype=np.uint16)
    lib.ns_f16_add_vec(cptr("uint16_t *", a), cptr("uint16_t *", b), a.size, ROUNDING_MODES[mode],
                       cptr("uint16_t *", out))
    return out


def c_f16_add_outer(a, b, mode="nearest_even") -> np.ndarray:
    """(len(a), len(b)) table of ns_f16_add(a[i], b[j])."""
    a = np.ascontiguousarray(a, dtype=np.uint16)
    b = np.ascontiguousarray(b, dtype=np.uint16)
    out = np.empty((a.size, b.size), dtype=np.uint16)
    lib.ns_f16_add_outer(cptr("uint16_t *", a), a.size, cptr("uint16_t *", b), b.size, ROUNDING_MODES[mode],
                         cptr("uint16_t *", out))
    return out


def c_float_mac_steps(unit, acc, a, b):
    """unit's fused step for every row: acc (n,) codes, a, b (n, g) codes; one C call."""
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
    """unit's integer step for every element (acc, a, b codes, shift the alignment shift); returns
    (outputs, C status, row of the first error, event count)."""
    acc, a, b = (np.ascontiguousarray(x, dtype=np.uint32) for x in (acc, a, b))
    shift = np.ascontiguousarray(shift, dtype=np.int32)
    out = np.empty(acc.shape, dtype=np.uint32)
    ev, err = ffi.new("int64_t *"), ffi.new("int64_t *")
    st = lib.ns_int_mac_step_vec(unit._c, cptr("uint32_t *", acc), cptr("uint32_t *", a), cptr("uint32_t *", b),
                                 cptr("int32_t *", shift), acc.size, cptr("uint32_t *", out), ev, err)
    return out, int(st), int(err[0]), int(ev[0])
