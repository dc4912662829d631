"""Every product and accumulate step of the small-operand-space units against numpy oracles computed from
the exact-Fraction value tables: all INT4 x INT4 products x alignment shifts x INT32 accumulator edge
codes (wrap, saturate, error), the per-sample shift in both directions, every INT4 x FP4 product (both
phases, the exponent trick's three underflow policies) and every FP8 x FP8 product (e4m3, e5m2) into
FP16 with sampled accumulator codes in every rounding mode. `numsim verify units --full`
(benchmarks/exhaustive_units.py) sweeps every FP16 accumulator code."""
import numpy as np
import pytest

from numsim.verify import oracles as O, units as U
from numsim.units import get_unit


@pytest.fixture(scope="module")
def results():
    return U.unit_checks(full=False)


def test_every_check_ran_and_matched(results):
    names = [r["check"] for r in results]
    assert len(names) == len(set(names)) == 33
    for r in results:
        assert r["steps"] > 0
        assert r["mismatches"] == 0, (r["check"], r["examples"])


def test_coverage_of_the_operand_spaces(results):
    by = {r["check"]: r for r in results}
    # 256 INT4 x INT4 pairs x 13 shifts x 49 accumulator codes
    assert by["int4_int32 step (widen wrap, acc wrap)"]["steps"] == 256 * 13 * 49
    e4 = [r for r in results if r["check"].startswith("fp8_fp16")]
    assert len(e4) == 5 and all(r["steps"] % (256 * 256) == 0 for r in e4)     # every e4m3 pair
    i4 = [r for r in results if r["check"].startswith("int4_fp4r4_fp16 (int4")]
    assert len(i4) == 5 and all(r["steps"] % 256 == 0 and r["steps"] >= 256 * 900 for r in i4)


def test_value_tables_equal_the_reference_decode():
    """The production value tables (numsim.formats' exact decode) equal numsim.reference's, code by code."""
    from fractions import Fraction

    from numsim.formats import get_format
    from numsim.reference.formats import decode_exact

    for name in ("fp8_e4m3fn", "fp8_e5m2", "fp16", "fp4_e2m1", "int4", "int4_sym", "uint4", "int8"):
        fmt, t = get_format(name), O.value_table(name)
        for c in range(2**fmt.bits):
            if fmt.kind == "int" and not fmt.valid_code(c):
                assert np.isnan(t[c]), (name, c)
                continue
            v = decode_exact(c, fmt)
            if v == "nan":
                assert np.isnan(t[c]), (name, c)
            elif isinstance(v, str):
                assert t[c] == {"inf": np.inf, "-inf": -np.inf}[v], (name, c)
            else:
                assert Fraction(t[c]) == v, (name, c)
                if fmt.kind == "float":
                    assert np.signbit(t[c]) == bool(c >> (fmt.bits - 1)), (name, c)
    t = O.value_table("fp8_e4m3fn")
    assert t[0x7E] == 448.0 and np.isnan(t[0x7F]) and t[0x01] == 2.0**-9 and np.signbit(t[0x80])
    r4 = O.value_table(get_unit("int4_fp4r4_fp16")._c_b_fmt)
    assert r4[0] == 0 and r4[1] == 4.0**-3 and r4[7] == 4.0**3 and r4[9] == -(4.0**-3)
    assert np.isnan(O.value_table("int4_sym")[8])                                 # excluded code


def test_unit_oracle_catches_a_wrong_rounding(monkeypatch):
    """The comparison can fail: feed the unit nearest-even while the oracle expects truncation."""
    u = get_unit("fp8_fp16")
    real = U.c_float_mac_steps
    monkeypatch.setattr(U, "numpy_f16_mac_step", lambda acc, p, mode: O.numpy_round_f16(
        acc.view(np.float16).astype(np.float64) + p[:, 0], 0.0, "toward_zero", np.zeros(acc.shape, bool)))
    r = U.check_float_products(u, np.array([0x3C00, 0x4000, 0x0001], np.uint16))[0]
    assert r["mismatches"] > 1000
    assert U.c_float_mac_steps is real


def test_oracle_breaks_near_ties_by_the_smallest_addend():
    """acc + p a hair off an FP16 midpoint: the 2^-24 accumulator decides the rounding."""
    acc = np.array([0x0001, 0x8001, 0x0001], np.uint16)               # +-2^-24
    p = np.array([[2.0**15 + 2.0**4], [2.0**15 + 2.0**4], [3.0 * 2.0**14]])
    # exact sums: 32784 + 2^-24 (tie broken upward by the tiny addend), and below
    assert O.numpy_f16_mac_step(acc[:1], p[:1], "nearest_even")[0] == np.float16(32800).view(np.uint16)
    assert O.numpy_f16_mac_step(acc[1:2], p[1:2], "nearest_even")[0] == np.float16(32768).view(np.uint16)
    assert O.numpy_f16_mac_step(acc[2:], p[2:], "toward_pos")[0] == np.float16(49184).view(np.uint16)
