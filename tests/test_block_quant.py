"""The block quantizer against a straightforward exact-rational reimplementation."""
from fractions import Fraction

import numpy as np
import pytest

import numsim
from numsim import NumsimError
from numsim.block import BlockKind, BlockPolicy, BlockTensor, KINDS, quantize_blocks


def floor_log2(q):
    e = q.numerator.bit_length() - q.denominator.bit_length()
    return e if Fraction(2) ** e <= q else e - 1


def round_half_even(n):
    f = n.numerator // n.denominator
    r = n - f
    return f + (1 if r > Fraction(1, 2) or (r == Fraction(1, 2) and f % 2) else 0)


def fp32(q):
    """q rounded nearest-even to FP32 (no overflow in these tests)."""
    if q == 0:
        return Fraction(0)
    s, a = (-1 if q < 0 else 1), abs(q)
    ulp = Fraction(2) ** (max(floor_log2(a), -126) - 23)
    return s * round_half_even(a / ulp) * ulp


def grid(fmt, unit=Fraction(1)):
    """(value, code) for every finite code, sorted by value."""
    out = []
    for c in range(2 ** fmt.bits):
        v = fmt.exact_value(c)
        if not isinstance(v, str) and fmt.valid_code(c):
            out.append((v * unit, c))
    return sorted(out, key=lambda t: t[0])


def round_to_grid(y, g, even_code):
    """Nearest value of g to y, ties to the even code; saturating beyond the ends."""
    vals = [v for v, _ in g]
    if y >= vals[-1]:
        return vals[-1]
    if y <= vals[0]:
        return vals[0]
    lo = max(i for i, v in enumerate(vals) if v <= y)
    if vals[lo] == y:
        return y
    a, b = g[lo], g[lo + 1]
    da, db = y - a[0], b[0] - y
    if da != db:
        return a[0] if da < db else b[0]
    return a[0] if even_code(a[1]) else b[0]


def scale_values(fmt):
    return [fmt.exact_value(c) for c in range(fmt.nan_code)]


def ref_quantize(x, kind, policy):
    """Exact values of the quantized rows of a 2-d float32 array, blocks along the last axis."""
    k = kind
    sv = scale_values(k.scale_fmt)
    g = grid(k.elem_fmt)              # y is in element-code units: d holds elem_unit
    if k.elem_fmt.kind == "int":
        even = lambda c: c % 2 == 0
    else:
        even = lambda c: (c & ((1 << (k.elem_fmt.bits - 1)) - 1)) % 2 == 0
    emax = Fraction(k.elem_max)
    X = [[Fraction(float(v)) for v in row] for row in x]
    S = Fraction(1)
    if policy.scale_rule == "nvfp4":
        t = max(abs(v) for row in X for v in row)
        S = Fraction(1) if t == 0 else fp32(t / (emax * sv[-1]))
    out = []
    for row in X:
        orow = []
        for b in range(0, len(row), k.block_size):
            blk = row[b:b + k.block_size]
            amax = max(abs(v) for v in blk)
            if policy.scale_rule == "floor":
                e = -127 if amax == 0 else floor_log2(amax) - floor_log2(emax)
                s = Fraction(2) ** min(max(e, -127), 127)
            elif policy.scale_rule == "rceil":
                q = fp32(amax / emax)
                s = next((v for v in sv if v >= q), sv[-1])
            else:
                q = fp32(fp32(amax / emax) / S)
                s = round_to_grid(q, [(v, c) for c, v in enumerate(sv)], lambda c: c % 2 == 0)
            d = fp32(fp32(s * k.elem_unit) * S)
            for v in blk:
                if d == 0:
                    orow.append(Fraction(0))
                    continue
                y = fp32(v / d) if policy.scale_op == "div" else fp32(v * fp32(1 / d))
                orow.append(round_to_grid(y, g, even) * s * k.elem_unit * S)   # the stored value: exact product
        out.append(orow)
    return out


def inputs(seed, shape):
    rng = np.random.default_rng(seed)
    normal = (rng.standard_normal(shape) * np.exp2(rng.integers(-8, 8, shape[0]))[:, None]).astype(np.float32)
    ties = (rng.integers(-48, 49, shape) / 8).astype(np.float32)      # many exact element midpoints
    ties[0, :] = 0                                                    # an all-zero block
    return np.concatenate([normal, ties])


CASES = [(name, pol) for name in KINDS if name != "nvfp4" for pol in ("ocp", "rceil")] + [("nvfp4", "nvfp4")]


@pytest.mark.parametrize("name,pol", CASES)
@pytest.mark.parametrize("scale_op", ["div", "recip_mul"])
def test_against_exact_reimplementation(name, pol, scale_op):
    k = KINDS[name]
    policy = numsim.block.POLICIES[pol]
    policy = BlockPolicy(policy.scale_rule, scale_op, policy.rounding, policy.random_bits, policy.overflow)
    x = inputs(17, (4, 2 * k.block_size))
    t = quantize_blocks(x, k, policy)
    want = ref_quantize(x, k, policy)
    got = t.exact_values()
    assert [[got[i, j] for j in range(x.shape[1])] for i in range(x.shape[0])] == want
    assert np.array_equal(t.decode(), np.array([[float(v) for v in r] for r in want]))


def test_axis_and_shapes():
    x = inputs(3, (4, 32)).T.copy()          # (32, 8): blocks along axis 0
    t = quantize_blocks(x, "mxfp4", "ocp", axis=0)
    assert t.scale_codes.shape == (1, 8) and t.elem_codes.shape == (32, 8)
    t2 = quantize_blocks(x.T.copy(), "mxfp4", "ocp", axis=1)
    assert np.array_equal(t.decode(), t2.decode().T)


def test_user_declared_kind_ue5m3_block8():
    k = BlockKind("e4m3_ue5m3_b8", "fp8_e4m3fn", "ue5m3", 8)
    x = inputs(5, (2, 16))
    pol = BlockPolicy("rceil")
    got = quantize_blocks(x, k, pol).exact_values()
    assert [list(r) for r in got] == ref_quantize(x, k, pol)


def test_stochastic_uses_numsim_encode_bits():
    x = inputs(9, (2, 32))
    k = KINDS["mxfp4"]
    for bits in (1, 4, 32):
        pol = BlockPolicy("floor", rounding="stochastic", random_bits=bits)
        t = quantize_blocks(x, k, pol, seed=123)
        rn = quantize_blocks(x, k, "ocp")
        # the scales do not depend on the element rounding
        assert np.array_equal(t.scale_codes, rn.scale_codes)
        d = rn.kind.scale_fmt.decode(np.repeat(rn.scale_codes, 32, axis=-1))
        y = (x / d.astype(np.float32)).astype(np.float32)     # the FP32 scaled elements (power-of-two scale)
        want = numsim.encode(y, k.elem_fmt, rounding="stochastic", seed=123, random_bits=bits, overflow="saturate")
        assert np.array_equal(t.elem_codes, want)
        assert np.array_equal(t.elem_codes, quantize_blocks(x, k, pol, seed=123).elem_codes)


def test_overflow_nan_and_saturate():
    x = np.full((1, 32), 1.0, np.float32)
    x[0, 0] = 1.99                        # floor rule: scale 2^(0 - 8); 1.99 * 256 = 509 > 448
    sat = quantize_blocks(x, "mxfp8_e4m3", "ocp")
    assert sat.decode()[0, 0] == 448 / 256
    nan = quantize_blocks(x, "mxfp8_e4m3", BlockPolicy("floor", overflow="nan"))
    assert np.isnan(nan.decode()[0, 0]) and nan.decode()[0, 1] == 1.0
    with pytest.raises(NumsimError, match="overflow"):
        quantize_blocks(x, "mxfp4", BlockPolicy("floor", overflow="nan"))


def test_bad_input():
    with pytest.raises(NumsimError, match="values"):
        quantize_blocks(np.ones((2, 30), np.float32), "mxfp4")
    with pytest.raises(NumsimError, match="scale_rule"):
        BlockPolicy("round")
    with pytest.raises(NumsimError, match="scale_rule"):
        quantize_blocks(np.ones((1, 16), np.float32), "nvfp4", "ocp")
    with pytest.raises(NumsimError, match="kind"):
        quantize_blocks(np.ones((1, 16), np.float32), "mxfp5")
    with pytest.raises(NumsimError, match="values"):
        quantize_blocks(np.array([[np.inf] * 32], np.float32), "mxfp4")
