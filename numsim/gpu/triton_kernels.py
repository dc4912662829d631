"""Triton kernels of numsim's units: the same bits as the CPU kernels (numsim/kernels/).

Imported only by numsim.gpu's entry points (never by `import numsim`): it needs triton. Under
TRITON_INTERPRET=1 (set before triton is imported) the same kernels run on CPU tensors through
Triton's interpreter, which is how the tests prove their bits without a GPU (docs/gpu.md).

Proofs (tests/test_gpu_triton.py checks each against unit.gemm_codes; tools/gpu/check.py on a GPU):

- `int_dot_kernel` (IntMacUnit, IntMMAUnit): operand values (shifted by align_shift on A for the
  integer MAC) in int8, products and sums in int32 through tl.dot (IMMA on the GPU). Modulo 2^32 the
  int32 result is c + sum_k a_k b_k whatever the order of the adds (integer addition modulo 2^32 is
  associative and commutative). Inside the domain bound |c| + K max|a| max|b| < 2^(acc_bits-1) - 1
  (the bound of numsim/kernels/int_lanes.py) every partial sum is in range, so no wrap, saturation or
  overflow event happens in the unit, and the residue is the unit's accumulator. A wrapping 32-bit IMMA
  unit needs no bound: it wraps once per instruction modulo 2^32, which is the same residue.

- `_round_add` / `_round_one` (FloatMacUnit, k_step 1, RNE; the order walker is triton_exact.unit_kernel):
  operand values decoded exactly to fp32 (checked), each product a*b exact in fp32 (significands
  <= 24 bits together and the product inside fp32's normal range, checked in the domain), so an FMA
  contraction of the product and the add gives the same bits as a mul and an add.
  * fp32 accumulator: each step acc = RNE_fp32(acc + p) is one IEEE fp32 add (the unit's round_sum
    rounds the exact sum once, RNE); signed zeros, inf and NaN follow IEEE as the unit does.
  * fp16 accumulator: s = fl32(acc + p) and its exact error e by TwoSum (Knuth; no fp32 overflow:
    |acc| <= 65504, |p| < 2^32); round to odd in fp32 = s truncated toward zero (the predecessor in
    magnitude when e and s differ in sign) with its last bit set when e != 0; then one RNE cast to
    fp16. Rounding to odd at p bits then to nearest at q bits equals rounding to nearest at q bits
    when p >= q + 2 (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
    algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008): 24 >= 11 + 2, and fp32's
    quantum is <= 1/4 of fp16's at every fp16 magnitude (subnormals included). The fp16 overflow
    threshold 65520 is an even fp32 value, so the cast overflows exactly when RNE_fp16 does.
  * chunked order (csrc/units.c dot_terms): per chunk of `chunk` products, part = round(p_first)
    (no add: a -0 product stays -0), part = round(part + p) for the rest, then acc = round(acc + part).
  * acc_overflow: to_inf is IEEE's overflow; saturate replaces an infinite result of finite addends
    by the largest finite value of its sign.
  * overflow events (docs/units.md): a rounding of finite addends whose RNE result passes max finite
    (inf from the cast or add, before saturation), counted per output as the C kernels count them.
  * NaN: IEEE arithmetic gives NaN exactly where the unit does (NaN operand, 0 x inf, inf - inf); the
    unit's NaN code (the quieted initial accumulator if it is a NaN, else the default NaN) is set by
    the caller, which knows c.
"""
import triton
import triton.language as tl

FP16_MAX = 65504.0
FP32_MAX = 3.4028234663852886e38


@triton.jit
def int_dot_kernel(a_ptr, b_ptr, c_ptr, d_ptr, M, N, K, HAS_C: tl.constexpr,
                   BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    # a (M, K) int8, b (K, N) int8, c/d (M, N) int32, all contiguous
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for k0 in range(0, K, BK):
        kk = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * K + kk[None, :], mask=(rm[:, None] < M) & (kk[None, :] < K), other=0)
        b = tl.load(b_ptr + kk[:, None] * N + rn[None, :], mask=(kk[:, None] < K) & (rn[None, :] < N), other=0)
        acc += tl.dot(a, b, out_dtype=tl.int32)
    out = (rm[:, None] < M) & (rn[None, :] < N)
    if HAS_C:
        acc += tl.load(c_ptr + rm[:, None] * N + rn[None, :], mask=out, other=0)
    tl.store(d_ptr + rm[:, None] * N + rn[None, :], acc, mask=out)


@triton.jit
def _finite(x):
    # a comparison, not x - x == 0: no compiler may fold it away
    return tl.abs(x) <= 3.4028234663852886e38


@triton.jit
def _bf16_rne(x):
    """x (fp32, finite or inf) rounded to nearest even into bf16 (held in fp32): the integer rounding of
    its bits (add 0x7FFF plus the kept LSB, clear the low 16 bits); a NaN stays a NaN."""
    bits = x.to(tl.int32, bitcast=True)
    r = ((bits + 0x7FFF + ((bits >> 16) & 1)) & -65536).to(tl.float32, bitcast=True)
    return tl.where(x != x, x, r)


@triton.jit
def _round_one(p, ACC_F16: tl.constexpr, SAT: tl.constexpr):
    """(round([p]), overflow event 0/1): one term, no add (keeps -0). ACC_F16: 0 fp32, 1 fp16, 2 bf16."""
    if ACC_F16 == 1:
        r = p.to(tl.float16).to(tl.float32)
        ev = _finite(p) & (tl.abs(r) > 65504.0)
        if SAT:
            r = tl.where(ev, tl.where(p < 0, -65504.0, 65504.0), r)
    elif ACC_F16 == 2:
        r = _bf16_rne(p)
        ev = _finite(p) & (tl.abs(r) > 3.3895313892515355e38)
        if SAT:
            r = tl.where(ev, tl.where(p < 0, -3.3895313892515355e38, 3.3895313892515355e38), r)
    else:
        r = p                      # exact in fp32
        ev = (p != p) & (p == p)   # never (all false; the product is exact)
    return r, ev.to(tl.int32)


@triton.jit
def _round_add(acc, p, ACC_F16: tl.constexpr, SAT: tl.constexpr):
    """(round(acc + p) into the accumulator (fp32, or fp16 / bf16 held in fp32), RNE; overflow event 0/1).
    An event (docs/units.md): finite addends whose RNE result, exponent unbounded, passes max finite:
    exactly where the cast (or the fp32 add) of finite addends gives inf."""
    s = acc + p
    if ACC_F16 != 0:
        # TwoSum: e = (acc + p) - s exactly
        pv = s - acc
        av = s - pv
        e = (acc - av) + (p - pv)
        fin = _finite(s)
        bits = s.to(tl.int32, bitcast=True)
        toward_zero = ((e < 0.0) != (s < 0.0)).to(tl.int32)
        odd = (bits - toward_zero) | 1
        bits = tl.where(fin & (e != 0.0), odd, bits)
        so = bits.to(tl.float32, bitcast=True)
        if ACC_F16 == 1:
            r = so.to(tl.float16).to(tl.float32)
            ev = _finite(so) & (tl.abs(r) > 65504.0)      # so is finite exactly when acc and p are
            if SAT:
                r = tl.where(ev, tl.where(so < 0, -65504.0, 65504.0), r)
        else:
            r = _bf16_rne(so)
            ev = _finite(so) & (tl.abs(r) > 3.3895313892515355e38)
            if SAT:
                r = tl.where(ev, tl.where(so < 0, -3.3895313892515355e38, 3.3895313892515355e38), r)
    else:
        r = s
        ev = _finite(acc) & _finite(p) & (tl.abs(s) > 3.4028234663852886e38)
        if SAT:
            r = tl.where(ev, tl.where(s < 0, -3.4028234663852886e38, 3.4028234663852886e38), s)
    return r, ev.to(tl.int32)
