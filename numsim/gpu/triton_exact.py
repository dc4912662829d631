"""Triton kernels of numsim's units beyond the first ones (numsim/gpu/triton_kernels.py): every
reduction order, fused k_step groups, bf16 accumulators, directed rounding, integer MACs with any
overflow policy, the per-sample shift, and the H100 fused adder. Integer-significand arithmetic in
int64 lanes wherever a float unit's exact sums fit them.

Imported only by numsim.gpu's entry points (needs triton). Under TRITON_INTERPRET=1 the kernels run on
CPU tensors (tests/test_gpu_triton.py proves their bits against the CPU units that way).

Proofs (each mirrors csrc/units.c or csrc/hw.c line for line; the tests compare every kernel with
unit.gemm_codes on edge, random and targeted inputs):

- `unit_kernel` walks a unit's terms (a term = one fused group of k_step products) in the unit's order:
  sequential (acc = round(acc + term)), chunked (a chunk starts from its first term rounded alone,
  then acc = round(acc + part)) or pairwise (adjacent pairs level by level). The pairwise tree is
  walked as a binary counter: term t is pushed; while the slot of the level below is taken, the two
  are added (older one first). At the end the taken slots (the set bits of T) are added from the
  lowest (latest terms) up. This adds exactly the pairs csrc/units.c adds level by level: a block of
  2^j terms at an aligned start is complete when its last term arrives, and a trailing partial block
  is the right operand of every level it survives, which is the final right-to-left fold.
  * PATH 0 (k_step 1, RNE, fp32 / fp16 / bf16 accumulator): fp32 arithmetic as in triton_kernels
    (fp32 add; fp16 and bf16 by TwoSum + round to odd + one RNE rounding: 24 >= 8 + 2 and 11 + 2).
    bf16's RNE rounding of the odd-rounded fp32 value is the integer one on its bits (add 0x7FFF plus
    the kept LSB, clear 16 bits); the bf16 overflow threshold (2 - 2^-8) 2^127 is an even fp32 value.
  * PATH 1 (any k_step, any deterministic rounding, IEEE radix-2 accumulator): every term is an exact
    integer in units of 2^exact_lsb (the operand tables are pre-scaled by powers of two so each fp64
    product is that integer exactly: significands <= 53 bits, checked by the unit), and the unit's
    span bound (span_bits <= 62) keeps every partial sum below 2^62 in magnitude: the int64 sum is
    the exact sum. It is rounded once by integer shifts (ns_round_pack's rule: quantum exponent
    max(floor(log2|x|), emin) - man_bits, the mode's decision on the dropped bits, a carry into the
    next binade is the next code, overflow per policy with IEEE's max-finite for modes that round
    the magnitude down), and a zero sum takes csrc/units.c round_sum's sign rule. Accumulator values
    are carried as their codes and re-read exactly.
  * PATH 2 (integer MAC): int64 lanes; every register is fitted to its width under its policy exactly
    as fit_signed does (wrap, saturate; an 'error' policy raises a flag, and the host runs the CPU
    kernels, which raise the unit's error); events counted per fit.
- `sample_shift_kernel`: csrc/units.c dot_sample_shift in int64 lanes (per-sample and per-shift
  groupings, left shifts with their overflow policy, right shifts rounded on the magnitude).
- `fused_dot_kernel`: csrc/hw.c fused_output / fused_step_core in int64 lanes (see its comment).
"""
import triton
import triton.language as tl

from .triton_kernels import _finite, _round_add, _round_one  # noqa: F401  (PATH 0 reuses them)


# ---- integer rounding of an exact sum (PATH 1 and the fused adder) ------------------------------

@triton.jit
def _msb(mag):
    """floor(log2 mag) of int64 mag >= 1: the fp64 conversion may round up to the next power of two;
    the integer comparison corrects it."""
    f = mag.to(tl.float64)
    e = ((f.to(tl.int64, bitcast=True) >> 52) & 2047) - 1023
    e = tl.maximum(e, 0)
    one = tl.full(e.shape, 1, tl.int64)
    return tl.where((one << e) > mag, e - 1, e)


@triton.jit
def _round_mag(mag, neg, lsb, MODE: tl.constexpr, MAN: tl.constexpr, EMIN: tl.constexpr):
    """(kept significand, quantum exponent q) of mag * 2^lsb (mag >= 1) rounded to a radix-2 float
    with MAN fraction bits and minimum normal exponent EMIN (subnormals kept), exponent unbounded
    above; q = max(floor(log2 x), EMIN) - MAN. MODE: 0 nearest-even, 1 nearest-away, 2 toward zero,
    3 toward -inf, 4 toward +inf (numsim.rounding's order)."""
    E = _msb(mag) + lsb
    q = tl.maximum(E, EMIN) - MAN
    sh = q - lsb
    one = tl.full(mag.shape, 1, tl.int64)
    rs = tl.minimum(tl.maximum(sh, 0), 62)
    kept = tl.where(sh >= 0, mag >> rs, mag << tl.minimum(tl.maximum(-sh, 0), 62))
    kept = tl.where(sh > 62, 0, kept)
    rem = tl.where(sh > 0, mag - (kept << rs), 0)
    rem = tl.where(sh > 62, mag, rem)
    half = tl.where(sh > 0, (one << rs) >> 1, 0)
    half = tl.where(sh > 62, one << 62, half)
    inexact = rem != 0
    if MODE == 0:
        up = (rem > half) | ((rem == half) & inexact & ((kept & 1) == 1))
    elif MODE == 1:
        up = inexact & (rem >= half)
    elif MODE == 2:
        up = inexact & (rem < 0)
    elif MODE == 3:
        up = inexact & neg
    else:
        up = inexact & (neg == 0)
    return kept + up.to(tl.int64), q


@triton.jit
def _round_fixed(S, negz, MODE: tl.constexpr, SAT: tl.constexpr, MAN: tl.constexpr, EMIN: tl.constexpr,
                 LSB: tl.constexpr, INF_CODE: tl.constexpr, SIGN: tl.constexpr):
    """(code, overflow event) of the exact sum S * 2^LSB (int64) rounded once into the accumulator;
    an exact zero is -0 when negz."""
    neg = S < 0
    mag = tl.where(neg, -S, S)
    kept, q = _round_mag(tl.maximum(mag, 1), neg, LSB, MODE, MAN, EMIN)
    cm = kept + ((q - (EMIN - MAN)).to(tl.int64) << MAN)      # a carry into the next binade is the next code
    ev = (cm >= INF_CODE) & (mag != 0)
    if MODE == 2:
        down = neg | (neg == 0)
    elif MODE == 3:
        down = neg == 0
    elif MODE == 4:
        down = neg
    else:
        down = neg & (neg == 0)
    if SAT:
        over = tl.full(cm.shape, INF_CODE - 1, tl.int64)
    else:
        over = tl.where(down, INF_CODE - 1, INF_CODE).to(tl.int64)
    cm = tl.where(ev, over, cm)
    code = cm | (neg.to(tl.int64) << SIGN)
    code = tl.where(mag == 0, negz.to(tl.int64) << SIGN, code)
    return code, ev.to(tl.int32)


@triton.jit
def _fixed_of(code, MAN: tl.constexpr, EMIN: tl.constexpr, LSB: tl.constexpr, EXPMASK: tl.constexpr,
              SIGN: tl.constexpr):
    """An accumulator code read exactly as an int64 in units of 2^LSB, with its sign and specials."""
    field = (code >> MAN) & EXPMASK
    man = code & ((1 << MAN) - 1)
    sig = tl.where(field == 0, man, man | (1 << MAN))
    sh = tl.where(field == 0, 0, field - 1) + (EMIN - MAN - LSB)
    special = field == EXPMASK
    v = tl.where(special, 0, sig) << tl.where(special, 0, sh)
    neg = ((code >> SIGN) & 1) == 1
    v = tl.where(neg, -v, v)
    nan = special & (man != 0)
    pinf = special & (man == 0) & (neg == 0)
    ninf = special & (man == 0) & neg
    return v, neg, nan, pinf, ninf


@triton.jit
def _resolve(code, ev, nan, pinf, ninf, INF_CODE: tl.constexpr, SIGN: tl.constexpr, MAN: tl.constexpr):
    """csrc/units.c resolve_specials: NaN (the default NaN; the host puts c's own NaN where c was one),
    +inf and -inf together give NaN, else the infinity; no event on a special result."""
    special = nan | (pinf & ninf) | pinf | ninf
    dnan = (1 << SIGN) | INF_CODE | (1 << (MAN - 1))
    out = tl.where(nan | (pinf & ninf), dnan, tl.where(pinf, INF_CODE, tl.where(ninf, (1 << SIGN) | INF_CODE, code)))
    return out.to(tl.int64), tl.where(special, 0, ev)


@triton.jit
def _zero_sign(allz, alln, nonen, MODE: tl.constexpr):
    """csrc/units.c round_sum: an exact zero sum is -0 when every term is a -0, or (unless every term
    is a +0) under toward_neg."""
    negz = allz & alln
    if MODE == 3:
        negz = negz | ((allz & nonen) == 0)
    return negz


@triton.jit
def _add_codes(x, y, MODE: tl.constexpr, SAT: tl.constexpr, MAN: tl.constexpr, EMIN: tl.constexpr,
               LSB: tl.constexpr, INF_CODE: tl.constexpr, EXPMASK: tl.constexpr, SIGN: tl.constexpr):
    vx, nx, anx, pix, nix = _fixed_of(x, MAN, EMIN, LSB, EXPMASK, SIGN)
    vy, ny, any_, piy, niy = _fixed_of(y, MAN, EMIN, LSB, EXPMASK, SIGN)
    allz = (vx == 0) & (vy == 0)
    negz = _zero_sign(allz, nx & ny, (nx == 0) & (ny == 0), MODE)
    code, ev = _round_fixed(vx + vy, negz, MODE, SAT, MAN, EMIN, LSB, INF_CODE, SIGN)
    return _resolve(code, ev, anx | any_, pix | piy, nix | niy, INF_CODE, SIGN, MAN)


@triton.jit
def _group(acc, HAS_ACC: tl.constexpr, at_ptr, b_ptr, k0, K, M, N, rm, rn, mm, mn,
           KSTEP: tl.constexpr, MODE: tl.constexpr, SAT: tl.constexpr, MAN: tl.constexpr, EMIN: tl.constexpr,
           LSB: tl.constexpr, INF_CODE: tl.constexpr, EXPMASK: tl.constexpr, SIGN: tl.constexpr):
    """[acc +] the products k0 .. k0 + KSTEP - 1 (those < K), summed exactly and rounded once."""
    S = tl.zeros((rm.shape[0], rn.shape[0]), tl.int64)
    allz = S == 0
    alln = allz
    nonen = allz
    nan = S != 0
    pinf = nan
    ninf = nan
    if HAS_ACC:
        v, neg, nan, pinf, ninf = _fixed_of(acc, MAN, EMIN, LSB, EXPMASK, SIGN)
        S = v
        allz = v == 0
        alln = neg
        nonen = neg == 0
    for i in tl.static_range(KSTEP):
        k = k0 + i
        kam = (rm * 0 + k) < K
        kbn = (rn * 0 + k) < K
        kv = kam[:, None] & kbn[None, :]
        a = tl.load(at_ptr + k * M + rm, mask=mm & kam, other=0.0)
        b = tl.load(b_ptr + k * N + rn, mask=mn & kbn, other=0.0)
        p = a[:, None] * b[None, :]                       # exact, in units of 2^LSB (pre-scaled a)
        pn = p != p
        pi = p == float("inf")
        ni = p == float("-inf")
        fin = (pn | pi | ni) == 0
        S += tl.where(fin & kv, p, 0.0).to(tl.int64)
        sb = p.to(tl.int64, bitcast=True) < 0
        allz = allz & ((kv == 0) | (p == 0.0))
        alln = alln & ((kv == 0) | sb)
        nonen = nonen & ((kv == 0) | (sb == 0))
        nan = nan | (kv & pn)
        pinf = pinf | (kv & pi)
        ninf = ninf | (kv & ni)
    negz = _zero_sign(allz, alln, nonen, MODE)
    code, ev = _round_fixed(S, negz, MODE, SAT, MAN, EMIN, LSB, INF_CODE, SIGN)
    return _resolve(code, ev, nan, pinf, ninf, INF_CODE, SIGN, MAN)


# ---- integer registers (PATH 2) -----------------------------------------------------------------

@triton.jit
def _fit(v, BITS: tl.constexpr, POLICY: tl.constexpr):
    """(v fitted into a signed BITS-bit register, event 0/1, error 0/1): csrc/units.c fit_signed.
    POLICY: 0 wrap, 1 saturate, 2 error (numsim.rounding.OVERFLOW_POLICIES' names, mapped by the host)."""
    hi = (1 << (BITS - 1)) - 1
    lo = -hi - 1
    out = (v < lo) | (v > hi)
    if POLICY == 0:
        w = v & ((1 << BITS) - 1)
        w = tl.where(w > hi, w - (1 << BITS), w)
        r = tl.where(out, w, v)
    elif POLICY == 1:
        r = tl.minimum(tl.maximum(v, lo), hi)
    else:
        r = v
    err = out & (POLICY == 2)
    return r, out.to(tl.int32), err.to(tl.int32)


@triton.jit
def _int_term(acc, HAS_ACC: tl.constexpr, at_ptr, b_ptr, sh_ptr, k, M, N, rm, rn, mm, mn,
              WBITS: tl.constexpr, WPOL: tl.constexpr, ABITS: tl.constexpr, APOL: tl.constexpr):
    """[acc +] widen(a_k * b_k) << align_shift[k]: csrc/units.c term_into for the integer MAC."""
    a = tl.load(at_ptr + k * M + rm, mask=mm, other=0)
    b = tl.load(b_ptr + k * N + rn, mask=mn, other=0)
    s = tl.load(sh_ptr + k)
    w = (a[:, None] * b[None, :]) << s
    w, ev, err = _fit(w, WBITS, WPOL)
    if HAS_ACC:
        w, ev2, err2 = _fit(acc + w, ABITS, APOL)
        ev += ev2
        err = err | err2
    return w, ev, err


# ---- the order walker -------------------------------------------------------------------------

@triton.jit
def _term(acc, HAS_ACC: tl.constexpr, at_ptr, b_ptr, sh_ptr, t, K, M, N, rm, rn, mm, mn,
          PATH: tl.constexpr, ACC: tl.constexpr, KSTEP: tl.constexpr, MODE: tl.constexpr, SAT: tl.constexpr,
          MAN: tl.constexpr, EMIN: tl.constexpr, LSB: tl.constexpr, INF_CODE: tl.constexpr,
          EXPMASK: tl.constexpr, SIGN: tl.constexpr, WBITS: tl.constexpr, WPOL: tl.constexpr,
          ABITS: tl.constexpr, APOL: tl.constexpr):
    """(state, events, errors) after [acc +] term t."""
    if PATH == 0:
        a = tl.load(at_ptr + t * M + rm, mask=mm, other=0.0)
        b = tl.load(b_ptr + t * N + rn, mask=mn, other=0.0)
        p = a[:, None] * b[None, :]
        if HAS_ACC:
            r, ev = _round_add(acc, p, ACC, SAT)
        else:
            r, ev = _round_one(p, ACC, SAT)
        err = ev & 0
    elif PATH == 1:
        r, ev = _group(acc, HAS_ACC, at_ptr, b_ptr, t * KSTEP, K, M, N, rm, rn, mm, mn, KSTEP, MODE, SAT, MAN,
                       EMIN, LSB, INF_CODE, EXPMASK, SIGN)
        err = ev & 0
    else:
        r, ev, err = _int_term(acc, HAS_ACC, at_ptr, b_ptr, sh_ptr, t, M, N, rm, rn, mm, mn, WBITS, WPOL, ABITS,
                               APOL)
    return r, ev, err


@triton.jit
def _combine(x, y, PATH: tl.constexpr, ACC: tl.constexpr, MODE: tl.constexpr, SAT: tl.constexpr,
             MAN: tl.constexpr, EMIN: tl.constexpr, LSB: tl.constexpr, INF_CODE: tl.constexpr,
             EXPMASK: tl.constexpr, SIGN: tl.constexpr, ABITS: tl.constexpr, APOL: tl.constexpr):
    """(round(x + y), events, errors): csrc/units.c acc_plus_acc."""
    if PATH == 0:
        r, ev = _round_add(x, y, ACC, SAT)
        err = ev & 0
    elif PATH == 1:
        r, ev = _add_codes(x, y, MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN)
        err = ev & 0
    else:
        r, ev, err = _fit(x + y, ABITS, APOL)
    return r, ev, err


@triton.jit
def unit_kernel(at_ptr, b_ptr, sh_ptr, c_ptr, d_ptr, ev_ptr, err_ptr, scr_ptr, M, N, K, T,
                HAS_C: tl.constexpr, PATH: tl.constexpr, ORDER: tl.constexpr, CHUNK: tl.constexpr,
                LEVELS: tl.constexpr, ACC: tl.constexpr, KSTEP: tl.constexpr, MODE: tl.constexpr,
                SAT: tl.constexpr, MAN: tl.constexpr, EMIN: tl.constexpr, LSB: tl.constexpr,
                INF_CODE: tl.constexpr, EXPMASK: tl.constexpr, SIGN: tl.constexpr, WBITS: tl.constexpr,
                WPOL: tl.constexpr, ABITS: tl.constexpr, APOL: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """One unit's GEMM: at (K, M) operand values of A transposed, b (K, N), sh (K,) align shifts (PATH
    2), c/d (M, N) accumulator state (PATH 0: fp32 values; PATH 1: int64 codes; PATH 2: int64 values),
    ev/err (M, N) int32, scr (LEVELS, M, N) the pairwise slots. ORDER 0 sequential, 1 chunked
    (CHUNK terms), 2 pairwise. T = number of terms."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mm = rm < M
    mn = rn < N
    out = mm[:, None] & mn[None, :]
    off = rm[:, None] * N + rn[None, :]
    if HAS_C:
        acc = tl.load(c_ptr + off, mask=out)
    else:
        acc = tl.load(c_ptr + off, mask=out & False, other=0)   # the state dtype's zero (+0, code 0)
    events = tl.zeros((BM, BN), dtype=tl.int32)
    errs = tl.zeros((BM, BN), dtype=tl.int32)
    if ORDER == 0:
        for t in range(0, T):
            acc, ev, er = _term(acc, True, at_ptr, b_ptr, sh_ptr, t, K, M, N, rm, rn, mm, mn, PATH, ACC, KSTEP, MODE,
                                SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN, WBITS, WPOL, ABITS, APOL)
            events += ev
            errs |= er
    elif ORDER == 1:
        for t0 in range(0, T, CHUNK):
            part, ev, er = _term(acc, False, at_ptr, b_ptr, sh_ptr, t0, K, M, N, rm, rn, mm, mn, PATH, ACC, KSTEP,
                                 MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN, WBITS, WPOL, ABITS, APOL)
            events += ev
            errs |= er
            t1 = tl.minimum(t0 + CHUNK, T)
            for t in range(t0 + 1, t1):
                part, ev, er = _term(part, True, at_ptr, b_ptr, sh_ptr, t, K, M, N, rm, rn, mm, mn, PATH, ACC,
                                     KSTEP, MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN, WBITS, WPOL, ABITS,
                                     APOL)
                events += ev
                errs |= er
            acc, ev, er = _combine(acc, part, PATH, ACC, MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN,
                                   ABITS, APOL)
            events += ev
            errs |= er
    else:
        MN = M * N
        for t in range(0, T):
            v, ev, er = _term(acc, False, at_ptr, b_ptr, sh_ptr, t, K, M, N, rm, rn, mm, mn, PATH, ACC, KSTEP, MODE,
                              SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN, WBITS, WPOL, ABITS, APOL)
            events += ev
            errs |= er
            # binary counter: while bit j of t is set (and every lower one), slot j (older) + v
            for j in tl.static_range(LEVELS):
                low = (1 << j) - 1
                if ((t & low) == low) & (((t >> j) & 1) == 1):
                    left = tl.load(scr_ptr + j * MN + off, mask=out)
                    v, ev, er = _combine(left, v, PATH, ACC, MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN,
                                         ABITS, APOL)
                    events += ev
                    errs |= er
                if ((t & low) == low) & (((t >> j) & 1) == 0):
                    tl.store(scr_ptr + j * MN + off, v, mask=out)
        # the taken slots (the set bits of T), latest terms first, each the left operand of the rest
        have = 0
        r = acc
        for j in tl.static_range(LEVELS):
            if ((T >> j) & 1) == 1:
                x = tl.load(scr_ptr + j * MN + off, mask=out)
                if have == 1:
                    x, ev, er = _combine(x, r, PATH, ACC, MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN,
                                         ABITS, APOL)
                    events += ev
                    errs |= er
                r = x
                have = 1
        if have == 1:
            acc, ev, er = _combine(acc, r, PATH, ACC, MODE, SAT, MAN, EMIN, LSB, INF_CODE, EXPMASK, SIGN, ABITS, APOL)
            events += ev
            errs |= er
    tl.store(d_ptr + off, acc, mask=out)
    tl.store(ev_ptr + off, events, mask=out)
    tl.store(err_ptr + off, errs, mask=out)


# ---- the per-sample shift (seed 000) --------------------------------------------------------------

@triton.jit
def _shift_apply(v, s, LEFT: tl.constexpr, MODE: tl.constexpr, MAXS: tl.constexpr, ABITS: tl.constexpr,
                 SPOL: tl.constexpr):
    """csrc/units.c sample_shift_apply: left by (MAXS - s) fitted under the shift's overflow policy, or
    right by s rounded on the magnitude (ns_round_shift_right with ns_magnitude_mode)."""
    if LEFT:
        r, ev, err = _fit(v << (MAXS - s), ABITS, SPOL)
    else:
        neg = v < 0
        mag = tl.where(neg, -v, v)
        one = tl.full(mag.shape, 1, tl.int64)
        kept = mag >> s
        rem = mag - (kept << s)
        half = (one << s) >> 1
        inexact = rem != 0
        if MODE == 0:
            up = (rem > half) | ((rem == half) & inexact & ((kept & 1) == 1))
        elif MODE == 1:
            up = inexact & (rem >= half)
        elif MODE == 2:
            up = inexact & (rem < 0)
        elif MODE == 3:
            up = inexact & neg
        else:
            up = inexact & (neg == 0)
        kept = kept + up.to(tl.int64)
        r = tl.where(neg, -kept, kept)
        ev = tl.zeros(r.shape, tl.int32)
        err = ev
    return r, ev, err


@triton.jit
def _into_group(g, j: tl.constexpr, s, w, ABITS: tl.constexpr, APOL: tl.constexpr):
    r, ev, err = _fit(g + w, ABITS, APOL)
    sel = s == j
    return tl.where(sel, r, g), tl.where(sel, ev, 0), tl.where(sel, err, 0)


@triton.jit
def sample_shift_kernel(at_ptr, b_ptr, sh_ptr, c_ptr, d_ptr, ev_ptr, err_ptr, M, N, K, HAS_C: tl.constexpr,
                        PER_SHIFT: tl.constexpr, LEFT: tl.constexpr, MODE: tl.constexpr, MAXS: tl.constexpr,
                        WBITS: tl.constexpr, WPOL: tl.constexpr, ABITS: tl.constexpr, APOL: tl.constexpr,
                        SPOL: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """csrc/units.c dot_sample_shift: at (K, M) and b (K, N) int64 operand values, sh (K,) sample
    shifts, c/d (M, N) int64 accumulator values."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mm = rm < M
    mn = rn < N
    out = mm[:, None] & mn[None, :]
    off = rm[:, None] * N + rn[None, :]
    if HAS_C:
        total = tl.load(c_ptr + off, mask=out, other=0)
    else:
        total = tl.zeros((BM, BN), tl.int64)
    events = tl.zeros((BM, BN), tl.int32)
    errs = tl.zeros((BM, BN), tl.int32)
    if PER_SHIFT:
        g0 = tl.zeros((BM, BN), tl.int64)
        g1 = g0
        g2 = g0
        g3 = g0
        g4 = g0
        for k in range(0, K):
            a = tl.load(at_ptr + k * M + rm, mask=mm, other=0)
            b = tl.load(b_ptr + k * N + rn, mask=mn, other=0)
            s = tl.load(sh_ptr + k)
            w, ev, er = _fit(a[:, None] * b[None, :], WBITS, WPOL)
            events += ev
            errs |= er
            g0, ev, er = _into_group(g0, 0, s, w, ABITS, APOL)
            events += ev
            errs |= er
            g1, ev, er = _into_group(g1, 1, s, w, ABITS, APOL)
            events += ev
            errs |= er
            g2, ev, er = _into_group(g2, 2, s, w, ABITS, APOL)
            events += ev
            errs |= er
            g3, ev, er = _into_group(g3, 3, s, w, ABITS, APOL)
            events += ev
            errs |= er
            g4, ev, er = _into_group(g4, 4, s, w, ABITS, APOL)
            events += ev
            errs |= er
        for j in tl.static_range(5):
            if j == 0:
                g = g0
            elif j == 1:
                g = g1
            elif j == 2:
                g = g2
            elif j == 3:
                g = g3
            else:
                g = g4
            v, ev, er = _shift_apply(g, j, LEFT, MODE, MAXS, ABITS, SPOL)
            events += ev
            errs |= er
            total, ev, er = _fit(total + v, ABITS, APOL)
            events += ev
            errs |= er
    else:
        for k in range(0, K):
            a = tl.load(at_ptr + k * M + rm, mask=mm, other=0)
            b = tl.load(b_ptr + k * N + rn, mask=mn, other=0)
            s = tl.load(sh_ptr + k)
            w, ev, er = _fit(a[:, None] * b[None, :], WBITS, WPOL)
            events += ev
            errs |= er
            w, ev, er = _shift_apply(w, s, LEFT, MODE, MAXS, ABITS, SPOL)
            events += ev
            errs |= er
            total, ev, er = _fit(total + w, ABITS, APOL)
            events += ev
            errs |= er
    tl.store(d_ptr + off, total, mask=out)
    tl.store(ev_ptr + off, events, mask=out)
    tl.store(err_ptr + off, errs, mask=out)


# ---- the H100 fused adder (csrc/hw.c) ---------------------------------------------------------------
# Operands decoded by table as csrc/hw.c does (sign, normalized integer magnitude of man_bits + 1 bits,
# exponent, class; zero and non-finite operands have magnitude 0 and an exponent far below any real
# one). A step: the special cases first (a NaN or 0 x inf product, inf - inf: NaN; an infinite product
# or accumulator: that infinity); emax = the largest exponent of a nonzero product (ea + eb, +1 under
# 'normalized' when the significand product carries) or of the accumulator; each term is its integer
# significand product shifted to units of 2^(emax - KB), truncated toward zero (an arithmetic right
# shift of the magnitude), the signed terms summed exactly in int64 (k_step + 1 terms below 2^(KB + 2)
# each), and the sum rounded once into the 1-8-ACC_MAN inner accumulator by _round_mag (toward zero
# or nearest even; past 2^128 an overflow event and inf, or max finite when saturating; a zero sum or
# an underflow to zero is +0), kept as fp32 bits. Promotion, the scale and the epilogue add are fp32
# RNE operations with csrc/hw.c's overflow events; a NaN result is NVIDIA's canonical 0x7fffffff.

@triton.jit
def _f32(bits):
    return bits.to(tl.int32).to(tl.float32, bitcast=True)


@triton.jit
def _bits(x):
    return x.to(tl.int32, bitcast=True).to(tl.int64) & 0xFFFFFFFF


@triton.jit
def _f32_finite(bits):
    return ((bits >> 23) & 0xFF) != 0xFF


@triton.jit
def _f32_add(x, y):
    r = _bits(_f32(x) + _f32(y))
    ev = (_f32_finite(r) == 0) & _f32_finite(x) & _f32_finite(y)
    return r, ev.to(tl.int32)


@triton.jit
def _round_inner(mag, neg, lsb, MODE: tl.constexpr, ACC_MAN: tl.constexpr, TO_INF: tl.constexpr):
    """(fp32 bits, event) of +-mag * 2^lsb (mag >= 1) rounded into the 1-8-ACC_MAN accumulator
    (csrc/hw.c round_sum_into_acc_general)."""
    E = _msb(mag) + lsb
    kept, q = _round_mag(mag, neg, lsb, MODE, ACC_MAN, -126)
    cm = kept + ((q - (-126 - ACC_MAN)).to(tl.int64) << ACC_MAN)
    inf_code = 0xFF << ACC_MAN
    ev = (E >= 128) | (cm >= inf_code)
    if TO_INF:
        over = tl.full(cm.shape, inf_code, tl.int64)
    else:
        over = tl.full(cm.shape, inf_code - 1, tl.int64)
    cm = tl.where(ev, over, cm)
    sign = neg.to(tl.int64) << 31
    r = tl.where(cm == 0, 0, sign | (cm << (23 - ACC_MAN)))
    return r, ev.to(tl.int32)


@triton.jit
def _fused_step(acc, am_ptr, an_ptr, ae_ptr, ac_ptr, bm_ptr, bn_ptr, be_ptr, bc_ptr, s, M, N, rm, rn, mm, mn,
                KSTEP: tl.constexpr, KB: tl.constexpr, MAB: tl.constexpr, NORMALIZED: tl.constexpr,
                ACC_MAN: tl.constexpr, MODE: tl.constexpr, TO_INF: tl.constexpr):
    field = (acc >> 23) & 0xFF
    cman = acc & 0x7FFFFF
    cneg = (acc >> 31) == 1
    nan = (field == 0xFF) & (cman != 0)
    pinf = (field == 0xFF) & (cman == 0) & (cneg == 0)
    ninf = (field == 0xFF) & (cman == 0) & cneg
    emax = tl.full(acc.shape, -(1 << 26), tl.int64)
    for i in tl.static_range(KSTEP):
        k = s + i
        ea = tl.load(ae_ptr + k * M + rm, mask=mm, other=-(1 << 24))
        eb = tl.load(be_ptr + k * N + rn, mask=mn, other=-(1 << 24))
        ca = tl.load(ac_ptr + k * M + rm, mask=mm, other=0)
        cb = tl.load(bc_ptr + k * N + rn, mask=mn, other=0)
        na = tl.load(an_ptr + k * M + rm, mask=mm, other=0)
        nb = tl.load(bn_ptr + k * N + rn, mask=mn, other=0)
        ca2 = ca[:, None]
        cb2 = cb[None, :]
        spec = (ca2 >= 2) | (cb2 >= 2)
        bad = spec & ((ca2 == 3) | (cb2 == 3) | (ca2 == 0) | (cb2 == 0))
        sgn = (na[:, None] ^ nb[None, :]) != 0
        nan = nan | bad
        ninf = ninf | (spec & (bad == 0) & sgn)
        pinf = pinf | (spec & (bad == 0) & (sgn == 0))
        e = ea[:, None] + eb[None, :]
        if NORMALIZED:
            ma = tl.load(am_ptr + k * M + rm, mask=mm, other=0)
            mb = tl.load(bm_ptr + k * N + rn, mask=mn, other=0)
            e += (((ma[:, None] * mb[None, :]) >> (MAB + 1)) != 0).to(tl.int64)
        emax = tl.maximum(emax, e)
    # the accumulator as cm * 2^(ec - 23), cm normalized (fp32 subnormals by their true exponent)
    cmsb = _msb(tl.maximum(cman, 1))
    cm = tl.where(field != 0, cman | 0x800000, tl.where(cman != 0, cman << (23 - cmsb), 0))
    ec = tl.where(field != 0, field - 127, cmsb - 149)
    emax = tl.where(cm != 0, tl.maximum(emax, ec), emax)
    S = tl.zeros(acc.shape, tl.int64)
    for i in tl.static_range(KSTEP):
        k = s + i
        ea = tl.load(ae_ptr + k * M + rm, mask=mm, other=-(1 << 24))
        eb = tl.load(be_ptr + k * N + rn, mask=mn, other=-(1 << 24))
        ma = tl.load(am_ptr + k * M + rm, mask=mm, other=0)
        mb = tl.load(bm_ptr + k * N + rn, mask=mn, other=0)
        na = tl.load(an_ptr + k * M + rm, mask=mm, other=0)
        nb = tl.load(bn_ptr + k * N + rn, mask=mn, other=0)
        p = ma[:, None] * mb[None, :]
        sh = KB - MAB - (emax - (ea[:, None] + eb[None, :]))
        t = tl.where(sh >= 0, p << tl.minimum(tl.maximum(sh, 0), 62), p >> tl.minimum(tl.maximum(-sh, 0), 63))
        t = tl.where(sh <= -63, 0, t)
        S += tl.where((na[:, None] ^ nb[None, :]) != 0, -t, t)
    shc = KB - 23 - (emax - ec)
    tc = tl.where(shc >= 0, cm << tl.minimum(tl.maximum(shc, 0), 62), cm >> tl.minimum(tl.maximum(-shc, 0), 63))
    tc = tl.where(shc <= -63, 0, tc)
    S += tl.where(cm != 0, tl.where(cneg, -tc, tc), 0)
    neg = S < 0
    mag = tl.where(neg, -S, S)
    r, ev = _round_inner(tl.maximum(mag, 1), neg, emax - KB, MODE, ACC_MAN, TO_INF)
    none = emax < -(1 << 23)
    r = tl.where(none | (mag == 0), 0, r)
    ev = tl.where(none | (mag == 0), 0, ev)
    special = nan | pinf | ninf
    r = tl.where(nan | (pinf & ninf), 0x7FFFFFFF, tl.where(pinf, 0x7F800000, tl.where(ninf, 0xFF800000, r)))
    ev = tl.where(special, 0, ev)
    return r.to(tl.int64), ev


@triton.jit
def fused_dot_kernel(am_ptr, an_ptr, ae_ptr, ac_ptr, bm_ptr, bn_ptr, be_ptr, bc_ptr, c_ptr, d_ptr, ev_ptr,
                     M, N, Kp, scale, HAS_C: tl.constexpr, KSTEP: tl.constexpr, KB: tl.constexpr,
                     MAB: tl.constexpr, NORMALIZED: tl.constexpr, ACC_MAN: tl.constexpr, MODE: tl.constexpr,
                     TO_INF: tl.constexpr, PROMO: tl.constexpr, EPILOGUE: tl.constexpr, SCALE: tl.constexpr,
                     BM: tl.constexpr, BN: tl.constexpr):
    """csrc/hw.c fused_output: operand tables (Kp, M) for A (k-major) and (Kp, N) for B, permuted and
    zero-padded to Kp by the host; c/d (M, N) fp32 bits in int64; ev (M, N) int32."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mm = rm < M
    mn = rn < N
    out = mm[:, None] & mn[None, :]
    off = rm[:, None] * N + rn[None, :]
    if HAS_C:
        c0 = tl.load(c_ptr + off, mask=out, other=0)
    else:
        c0 = tl.zeros((BM, BN), tl.int64)
    events = tl.zeros((BM, BN), tl.int32)
    acc = tl.zeros((BM, BN), tl.int64)
    if PROMO == 0:
        if HAS_C:
            if EPILOGUE == 0:
                nonzero = (c0 & 0x7FFFFFFF) != 0
                if ACC_MAN == 23:
                    acc = tl.where(nonzero, c0, 0)
                else:          # c enters a narrower accumulator: rounded into it (csrc/hw.c round_into_inner)
                    cf = (c0 >> 23) & 0xFF
                    cman = c0 & 0x7FFFFF
                    cmsb = _msb(tl.maximum(cman, 1))
                    cm = tl.where(cf != 0, cman | 0x800000, cman)
                    lsb = tl.where(cf != 0, cf - 150, -149)
                    r, ev = _round_inner(tl.maximum(cm, 1), (c0 >> 31) == 1, lsb, MODE, ACC_MAN, TO_INF)
                    keep = nonzero & (cf != 0xFF)
                    acc = tl.where(keep, r, tl.where(nonzero, c0, 0))
                    events += tl.where(keep, ev, 0)
    outer = tl.zeros((BM, BN), tl.int64)
    if PROMO != 0:
        if EPILOGUE == 0:
            outer = c0
    for s in range(0, Kp, KSTEP):
        acc, ev = _fused_step(acc, am_ptr, an_ptr, ae_ptr, ac_ptr, bm_ptr, bn_ptr, be_ptr, bc_ptr, s, M, N, rm, rn,
                              mm, mn, KSTEP, KB, MAB, NORMALIZED, ACC_MAN, MODE, TO_INF)
        events += ev
        if PROMO != 0:
            if (((s + KSTEP) % PROMO) == 0) | (s + KSTEP >= Kp):
                outer, ev = _f32_add(outer, acc)
                events += ev
                acc = tl.zeros((BM, BN), tl.int64)
    if PROMO != 0:
        r = outer
    else:
        r = acc
    if SCALE:
        r2 = _bits(_f32(r) * scale)
        events += ((_f32_finite(r2) == 0) & _f32_finite(r)).to(tl.int32)
        r = r2
    if EPILOGUE:
        if HAS_C:
            r, ev = _f32_add(r, c0)
            events += ev
    r = tl.where((((r >> 23) & 0xFF) == 0xFF) & ((r & 0x7FFFFF) != 0), 0x7FFFFFFF, r)
    tl.store(d_ptr + off, r, mask=out)
    tl.store(ev_ptr + off, events, mask=out)
