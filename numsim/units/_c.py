"""The C glue every unit shares: enum tables, parameter checks, operand / context conversion, the
C unit descriptor, the MAC-level kernel calls and status -> NumsimError.

The enum tables are read from the built library (numsim._abi); the tuples below are the subsets each
accumulator kind allows."""
from __future__ import annotations

import functools
from functools import cached_property

import numpy as np

from .. import _abi
from .._ffi import cptr, ffi, lib
from ..codec import c_format, check_codes, decode
from ..errors import NumsimError, bad
from ..formats import get_format
from .base import DotResult, GemmResult, Unit, acc_code, acc_codes, count_nonfinite, threads
from .flags import counts_dict

# ---- enum tables (the C enums, read from the built library) -----------------------------------------
ORDERS = _abi.ORDER
ODD_UNDERFLOW = _abi.ODD_UNDERFLOW
# the fused adder rounds its sum one of two ways (ns_fused_unit.sum_rounding)
FUSED_ROUNDING = {k: _abi.ROUNDING[k] for k in ("nearest_even", "toward_zero")}
INT_OVERFLOW = ("wrap", "saturate", "error")
FLOAT_OVERFLOW = ("to_inf", "saturate", "error")
DETERMINISTIC_ROUNDING = ("nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos")


# ---- parameter checks ---------------------------------------------------------------------------
def choice(arg, value, allowed):
    if value not in allowed:
        raise bad(arg, f"one of {sorted(allowed)}", repr(value))
    return value


def int_param(arg, value, lo, hi):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= int(value) <= hi:
        raise bad(arg, f"an integer in [{lo}, {hi}]", repr(value))
    return int(value)


def set_field(obj, name, value):
    object.__setattr__(obj, name, value)


def _codes(x, fmt, arg):
    """check_codes, letting an empty list (which numpy makes float64) through as an empty code array."""
    raw = x if isinstance(x, np.ndarray) else np.asarray(x)
    if raw.size == 0 and raw.dtype.kind == "f":
        raw = raw.astype(fmt.dtype)
    return check_codes(raw, fmt, arg)


def _scalar_code(x, fmt, arg):
    raw = np.asarray(x)
    if raw.ndim != 0:
        raise bad(arg, f"one {fmt} code", f"shape {raw.shape}")
    return int(check_codes(raw.reshape(1), fmt, arg)[0])



def set_formats(unit, operands, accumulator):
    """Names or descriptors in; format descriptors stored (like the seed units), checked by name."""
    for arg in ("a_fmt", "b_fmt"):
        v = getattr(unit, arg)
        try:
            f = get_format(v)
        except Exception:
            raise bad(arg, f"one of {operands}", repr(v)) from None
        if f.name not in operands:
            raise bad(arg, f"one of {operands}", repr(getattr(f, "name", v)))
        object.__setattr__(unit, arg, f)
    try:
        acc = get_format(unit.acc_fmt)
    except Exception:
        raise bad("acc_fmt", repr(accumulator), repr(unit.acc_fmt)) from None
    if acc.name != accumulator:
        raise bad("acc_fmt", f"{accumulator!r} (the accumulator storage)", repr(acc.name))
    object.__setattr__(unit, "acc_fmt", acc)


def operands(unit, a_codes, b_codes):
    """a (M, K) and b (K, N) checked as codes of the unit's operand formats."""
    a = _codes(a_codes, unit.a_fmt, "a_codes")
    b = _codes(b_codes, unit.b_fmt, "b_codes")
    if a.ndim != 2:
        raise bad("a_codes", "a 2-D (M, K) array of codes", f"shape {a.shape}")
    if b.ndim != 2:
        raise bad("b_codes", "a 2-D (K, N) array of codes", f"shape {b.shape}")
    K = a.shape[1]
    if b.shape[0] != K:
        raise bad("b_codes", f"{K} rows (a_codes has K={K} columns)", f"shape {b.shape}")
    return a, b


def initial_acc(unit, c, M, N):
    """The (M, N) initial accumulator codes (uint32) under the unit-level convention, or None."""
    if c is None:
        return None
    cc = acc_codes(c, unit.acc_fmt, "c")
    if cc.shape != (M, N):
        raise bad("c", f"shape {(M, N)}", f"shape {cc.shape}")
    return np.ascontiguousarray(cc.astype(np.uint32))


def raise_status(unit, st, where_output, step, k):
    """A C status as the NumsimError that names what overflowed (or the status)."""
    what = {lib.NS_ERR_OVERFLOW: f"accumulator ({unit.acc_fmt}, acc_overflow='error')",
            lib.NS_ERR_WIDEN_OVERFLOW: f"{getattr(unit, 'widen_bits', '?')}-bit widening (widen_overflow='error')",
            lib.NS_ERR_SHIFT_OVERFLOW: "per-sample left shift (shift_overflow='error')",
            lib.NS_ERR_INNER_OVERFLOW: f"{getattr(unit, 'inner_bits', '?')}-bit inner adder (inner_overflow='error')"}.get(st)
    if what is None:
        raise NumsimError(f"unit {unit.name}: kernel failed with status {st}")
    raise NumsimError(f"overflow: the {what} overflowed at output {where_output}, reduction step {step} (k={k})")


# ---- the tensor-core operand decoder (csrc/hw.c) -------------------------------------------------
def _arrange_k(a, bt, block):
    """Zero-pad K to whole blocks (zero products are neutral: they never set the alignment)."""
    K = a.shape[1]
    Kp = -(-K // block) * block if K else 0
    if Kp != K:
        a = np.concatenate([a, np.zeros((a.shape[0], Kp - K), a.dtype)], axis=1)
        bt = np.concatenate([bt, np.zeros((bt.shape[0], Kp - K), bt.dtype)], axis=1)
    return a, bt, Kp


@functools.lru_cache(maxsize=16)
def _decode_tables(fmt):
    """(mag, neg, exp, cls) of every code of a format of <= 16 bits, by the C decoder itself (so a
    gather from these tables is the C decode), or None when some code does not decode."""
    try:
        return tuple(np.ascontiguousarray(t) for t in _decode_direct(np.arange(2**fmt.bits, dtype=fmt.dtype), fmt))
    except NumsimError:
        return None


def decode_operands(codes, fmt):
    """(mag, neg, exp, cls) int32/uint8 arrays of a code array (see ns_hw_decode_operands). Formats of
    <= 16 bits gather from a per-format table once the array is larger than a quarter of the table."""
    fmt = get_format(fmt)
    c = np.ascontiguousarray(check_codes(codes, fmt))
    if fmt.bits <= 16 and c.size * 4 >= 2**fmt.bits:
        tables = _decode_tables(fmt)
        if tables is not None:
            out = (np.empty(c.shape, np.int32), np.empty(c.shape, np.int32), np.empty(c.shape, np.int32),
                   np.empty(c.shape, np.uint8))
            st = lib.ns_hw_gather_operands(cptr("void *", c), c.dtype.itemsize, c.size, tables[0].size,
                                           *(cptr("int32_t *", t) for t in tables[:3]), cptr("uint8_t *", tables[3]),
                                           *(cptr("int32_t *", t) for t in out[:3]), cptr("uint8_t *", out[3]))
            if st:
                raise NumsimError(f"codes: the {fmt} operands could not be decoded (status {st})")
            return out
    return _decode_direct(c, fmt)


def _decode_direct(c, fmt):
    n = c.size
    mag = np.empty(c.shape, np.int32)
    neg = np.empty(c.shape, np.int32)
    exp = np.empty(c.shape, np.int32)
    cls = np.empty(c.shape, np.uint8)
    st = lib.ns_hw_decode_operands(cptr("void *", c), c.dtype.itemsize, n, c_format(fmt), fmt.man_bits,
                                   cptr("int32_t *", mag), cptr("int32_t *", neg), cptr("int32_t *", exp),
                                   cptr("uint8_t *", cls))
    if st:
        raise NumsimError(f"codes: the {fmt} operands could not be decoded (status {st})")
    return mag, neg, exp, cls



# ---- the units run by csrc/units.c ----------------------------------------------------------------

class CUnit(Unit):
    """Argument checks, the C descriptor (ns_unit), and the MAC-level kernels of csrc/units.c."""

    _ctx_key: str | None = None       # the per-k context argument the unit takes, if any
    _ctx_range = (0, 0)

    # Subclasses fill the C descriptor in _fill(u). The descriptor is cached per instance and left out
    # of pickles (cffi objects do not pickle), so units travel to worker processes.
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_c", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @cached_property
    def _c(self):
        u = ffi.new("ns_unit *")
        u.a_fmt = c_format(self._c_a_fmt)[0]
        u.b_fmt = c_format(self._c_b_fmt)[0]
        u.acc_fmt = c_format(self.acc_fmt)[0]
        u.chunk = 1
        u.fused_n = 1
        self._fill(u)
        return u

    @property
    def _c_a_fmt(self):
        return self.a_fmt

    @property
    def _c_b_fmt(self):
        return self.b_fmt

    @property
    def out_fmt(self):
        stage = getattr(self, "output_stage", None)
        return stage.out_fmt if stage is not None else None

    # -- argument checks --
    def _ctx(self, ctx, K):
        """The per-k shift array (int32, length K) or None; rejects unknown context keys."""
        for key in ctx:
            if key != self._ctx_key:
                raise bad(key, f"no such context for unit {self.name}"
                          + (f" (it takes {self._ctx_key})" if self._ctx_key else " (it takes none)"), "a value")
        key = self._ctx_key
        if key is None:
            return None
        v = ctx.get(key)
        if v is None:
            if key == "sample_shift":
                raise bad("sample_shift", f"a length-{K} array of shift values in [0, 4]", "None")
            return None
        arr = np.asarray(v)
        if arr.ndim == 0 and K == 1:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.shape[0] != K:
            raise bad(key, f"a 1-D array of length K={K}", f"shape {arr.shape}")
        if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
            raise bad(key, "integers", f"dtype {arr.dtype}")
        lo, hi = self._ctx_range
        if arr.size and (arr.min() < lo or arr.max() > hi):
            i = int(np.argmax((arr < lo) | (arr > hi)))
            raise bad(key, f"values in [{lo}, {hi}]", f"{arr[i]!r} at index {i}")
        return np.ascontiguousarray(arr.astype(np.int32))

    def _acc_code(self, c, arg="c"):
        return acc_code(c, self.acc_fmt, arg)

    def _raise(self, st, where_output, step, k):
        raise_status(self, st, where_output, step, k)

    # -- one output --
    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a = _codes(a_codes, self.a_fmt, "a_codes")
        b = _codes(b_codes, self.b_fmt, "b_codes")
        if a.ndim != 1 or b.ndim != 1:
            raise bad("a_codes" if a.ndim != 1 else "b_codes", "a 1-D array of codes", f"shape {(a if a.ndim != 1 else b).shape}")
        if a.shape[0] != b.shape[0]:
            raise bad("b_codes", f"length {a.shape[0]} (the length of a_codes)", b.shape[0])
        K = a.shape[0]
        shift = self._ctx(ctx, K)
        c0 = self._acc_code(c)
        a32 = np.ascontiguousarray(a.astype(np.uint32))
        b32 = np.ascontiguousarray(b.astype(np.uint32))
        n_trace = int(lib.ns_unit_trace_len(self._c, K)) if trace else 0
        tr = np.zeros(max(n_trace, 1), dtype=np.uint32)
        trf = np.zeros(max(n_trace, 1), dtype=np.uint8)
        counts = np.zeros(5, dtype=np.int64)
        out = ffi.new("uint32_t *")
        ev, es, ek = ffi.new("int64_t *"), ffi.new("int64_t *"), ffi.new("int64_t *")
        sh = cptr("int32_t *", shift) if shift is not None else ffi.NULL
        st = lib.ns_unit_dot_flags(self._c, cptr("uint32_t *", a32), 1, cptr("uint32_t *", b32), 1, K, sh, c0, out,
                                   cptr("uint32_t *", tr) if trace else ffi.NULL,
                                   cptr("uint8_t *", trf) if trace else ffi.NULL, n_trace, ev,
                                   cptr("int64_t *", counts), es, ek)
        if st:
            self._raise(st, "0", es[0], ek[0])
        code = int(out[0])
        res = DotResult(code=code, value=float(decode(np.array([code]), self.acc_fmt)[0]),
                        trace=[int(x) for x in tr[:n_trace]] if trace else None, overflow_count=int(ev[0]),
                        trace_flags=[int(x) for x in trf[:n_trace]] if trace else None)
        res.info["flags"] = counts_dict(counts)
        self._finish_dot(res)
        return res

    def _finish_dot(self, res):
        stage = getattr(self, "output_stage", None)
        if stage is not None:
            res.out_code = int(stage.apply(np.array([res.code], dtype=np.uint32))[0])

    # -- many outputs --
    def problem(self, a_codes, b_codes, c=None, nthreads=None, ctx=None):
        """The checked GEMM problem (numsim.kernels.Problem) every kernel of this unit takes."""
        from ..kernels.problem import Problem

        a, b = operands(self, a_codes, b_codes)
        M, K = a.shape
        N = b.shape[1]
        shift = self._ctx(dict(ctx or {}), K)
        kctx = {} if shift is None else {self._ctx_key: shift}
        return Problem(a=a, b=b, c=initial_acc(self, c, M, N), ctx=kctx, nthreads=threads(nthreads))

    def mac_level_gemm(self, p) -> GemmResult:
        """The MAC-level kernel (csrc/units.c, ns_unit_gemm): every step as the unit defines it."""
        a, b = p.a, p.b
        M, K = a.shape
        N = b.shape[1]
        shift = p.ctx.get(self._ctx_key) if self._ctx_key else None
        try:
            a32 = np.ascontiguousarray(a.astype(np.uint32))
            bt32 = np.ascontiguousarray(b.T.astype(np.uint32))
            out = np.empty((M, N), dtype=np.uint32)
        except MemoryError:
            raise bad("a_codes, b_codes", "shapes whose operands and output fit in memory",
                      f"({M}, {K}) x ({K}, {N})") from None
        cc = p.c
        ev, ei, es, ek = (ffi.new("int64_t *") for _ in range(4))
        counts = np.zeros(5, dtype=np.int64) if getattr(self, "count_flags", False) else None
        st = lib.ns_unit_gemm_flags(self._c, cptr("uint32_t *", a32), cptr("uint32_t *", bt32), M, K, N,
                                    cptr("int32_t *", shift) if shift is not None else ffi.NULL,
                                    cptr("uint32_t *", cc) if cc is not None else ffi.NULL,
                                    cptr("uint32_t *", out), p.nthreads, ev,
                                    cptr("int64_t *", counts) if counts is not None else ffi.NULL, ei, es, ek)
        if st:
            idx = np.unravel_index(int(ei[0]), (M, N)) if M * N else (0, 0)
            self._raise(st, str(tuple(int(i) for i in idx)), es[0], ek[0])
        codes = out.astype(self.acc_fmt.dtype)
        res = GemmResult(codes=codes, values=decode(codes, self.acc_fmt), overflow_count=int(ev[0]))
        if counts is not None:
            res.info["flags"] = counts_dict(counts)
        count_nonfinite(res, self.acc_fmt)
        apply_output_stage(self, res)
        return res

    # -- RTL-style stepping --
    def initial_state(self, c=None):
        return self._acc_code(c)

    def finish(self, state):
        """The accumulator code the unit outputs from its final state."""
        return state

    def describe(self) -> str:
        return f"{self.name}: {type(self).__doc__.strip().splitlines()[0]}"


def apply_output_stage(unit, res):
    stage = getattr(unit, "output_stage", None)
    if stage is not None:
        res.out_codes = stage.apply(res.codes.astype(np.uint32))
    return res
