"""Every code of the block-scale formats against exact rationals, and their encoders."""
from fractions import Fraction

import numpy as np
import pytest

from numsim import NumsimError
from numsim.block import E8M0, UE4M3, UE5M3


def _expected(fmt, code):
    if code == (1 << fmt.bits) - 1:
        return "nan"
    e, m = code >> fmt.man_bits, code % (1 << fmt.man_bits)
    if fmt.man_bits == 0:
        return Fraction(2) ** (code - 127)               # E8M0: 2^(e - 127), no zero
    if e == 0:
        return Fraction(m, 1 << fmt.man_bits) * Fraction(2) ** (1 - fmt.bias)
    return (1 + Fraction(m, 1 << fmt.man_bits)) * Fraction(2) ** (e - fmt.bias)


@pytest.mark.parametrize("fmt,bias", [(E8M0, 127), (UE4M3, 7), (UE5M3, 15)])
def test_every_code_exact(fmt, bias):
    assert fmt.bias == bias
    n = 1 << fmt.bits
    dec = fmt.decode(np.arange(n))
    for code in range(n):
        want = _expected(fmt, code)
        assert fmt.exact_value(code) == want
        if want == "nan":
            assert np.isnan(dec[code])
        else:
            assert Fraction(dec[code]) == want


def test_named_extremes():
    assert E8M0.exact_value(0) == Fraction(1, 2**127) and E8M0.exact_value(254) == 2**127
    assert UE4M3.bits == 7 and UE4M3.exact_value(0x7E) == 448 and UE4M3.exact_value(1) == Fraction(1, 512)
    assert UE5M3.exact_value(0xFE) == 114688 and UE5M3.exact_value(0) == 0


@pytest.mark.parametrize("fmt", [E8M0, UE4M3, UE5M3])
@pytest.mark.parametrize("rounding", ["nearest_even", "toward_pos", "toward_neg"])
def test_encode_round_trip_and_rounding(fmt, rounding):
    n = (1 << fmt.bits) - 1
    vals = [fmt.exact_value(c) for c in range(n)]
    # every value encodes to its own code
    assert list(fmt.encode(np.array([float(v) for v in vals]), rounding)) == list(range(n))
    # midpoints and off-midpoints between neighbours, against the exact neighbour choice
    xs, want = [], []
    for c in range(n - 1):
        lo, hi = vals[c], vals[c + 1]
        for x in (lo + (hi - lo) / 2, lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3):
            xf = float(x)
            if Fraction(xf) != x or xf <= float(lo) or xf >= float(hi):
                continue
            x = Fraction(xf)
            if rounding == "toward_pos":
                w = c + 1
            elif rounding == "toward_neg":
                w = c
            else:
                d_lo, d_hi = x - lo, hi - x
                w = c if d_lo < d_hi else c + 1 if d_hi < d_lo else (c if c % 2 == 0 else c + 1)
            xs.append(xf)
            want.append(w)
    assert list(fmt.encode(np.array(xs), rounding)) == want


def test_encode_edges():
    assert list(E8M0.encode([0.0, 2.0**-200, 2.0**200, np.nan])) == [0, 0, 254, 255]
    assert list(UE4M3.encode([0.0, 1e6, np.nan])) == [0, 0x7E, 0x7F]
    with pytest.raises(NumsimError, match="values"):
        E8M0.encode([-1.0])
    with pytest.raises(NumsimError, match="rounding"):
        E8M0.encode([1.0], rounding="stochastic")
