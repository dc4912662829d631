"""The units' FP16 adder (ns_f16_add) against independent oracles on a stratified sample of the 2^32
operand pairs: every (sign, exponent) pair with edge and random mantissas, in every deterministic mode.
The full sweep is benchmarks/exhaustive_fp16.py (`numsim verify fp16`); its results are in
docs/verification.md."""
import json

import numpy as np
import pytest

from numsim import NumsimError
from numsim._ffi import lib
from numsim.rounding import ROUNDING_MODES
from numsim.verify import datapath as D, exhaustive as E, oracles as O
from numsim.reference import units as R


@pytest.fixture(scope="module")
def strat():
    return E.stratified_pairs(per_stratum=48, seed=7)


@pytest.mark.parametrize("mode", O.MODES)
def test_adder_equals_numpy_oracle_on_every_exponent_pair(mode, strat):
    a, b = strat
    assert a.size == 4096 * (16 + 48)
    got = D.c_f16_add(a, b, mode)
    want = O.numpy_f16_add(a, b, mode)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, [E.describe_pair(a[i], b[i], got[i], want[i]) for i in bad[:5]]


def test_vector_entries_are_the_scalar_adder():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 65536, 3000).astype(np.uint16)
    b = rng.integers(0, 65536, 3000).astype(np.uint16)
    for mode in O.MODES:
        scalar = np.array([lib.ns_f16_add(int(x), int(y), ROUNDING_MODES[mode]) for x, y in zip(a, b)], np.uint16)
        assert np.array_equal(D.c_f16_add(a, b, mode), scalar)
        table = np.array([[lib.ns_f16_add(int(x), int(y), ROUNDING_MODES[mode]) for y in b[:50]] for x in a[:40]],
                         np.uint16)
        assert np.array_equal(D.c_f16_add_outer(a[:40], b[:50], mode), table)


def test_numpy_oracle_agrees_with_the_fraction_reference():
    """The oracle itself is checked against numsim.reference (exact Fractions) in all five modes."""
    a, b = E.stratified_pairs(per_stratum=0, seed=1)
    rng = np.random.default_rng(11)
    pick = rng.choice(a.size, 1500, replace=False)
    a, b = a[pick], b[pick]
    for mode in O.MODES:
        want = np.array([R.f16_add(int(x), int(y), mode) for x, y in zip(a, b)], np.uint16)
        assert np.array_equal(O.numpy_f16_add(a, b, mode), want), mode


def test_directed_oracles_differ_from_nearest_even_where_they_must():
    """Each mode's oracle departs from nearest-even on inexact sums (so the residual fix is doing work)
    and the check catches an adder that ignores its rounding mode."""
    a, b = E.stratified_pairs(per_stratum=8, seed=2)
    rne = O.numpy_f16_add(a, b, "nearest_even")
    for mode in ("nearest_away", "toward_zero", "toward_neg", "toward_pos"):
        diff = np.count_nonzero(O.numpy_f16_add(a, b, mode) != rne)
        assert diff > 1000, mode
        assert np.count_nonzero(D.c_f16_add(a, b, "nearest_even") != O.numpy_f16_add(a, b, mode)) == diff
    # specific values: 1 + 2^-11 is a tie between 1 and 1 + 2^-10
    one, tiny = 0x3C00, 0x1000                                 # 2^-11 = 0x1000
    assert O.numpy_f16_add([one], [tiny], "nearest_even")[0] == 0x3C00
    assert O.numpy_f16_add([one], [tiny], "nearest_away")[0] == 0x3C01
    assert O.numpy_f16_add([one], [tiny], "toward_pos")[0] == 0x3C01
    assert O.numpy_f16_add([0xBC00], [0x9000], "toward_zero")[0] == 0xBC00
    assert O.numpy_f16_add([0x7BFF], [0x7BFF], "toward_zero")[0] == 0x7BFF   # overflow stops at max
    assert O.numpy_f16_add([0x3C00], [0xBC00], "toward_neg")[0] == 0x8000    # x - x = -0 rounding down


def test_adder_equals_mpfr_on_every_exponent_pair():
    pytest.importorskip("gmpy2", reason="gmpy2 (MPFR) is an optional test oracle")
    res = E.mpfr_sample(n_random=4000, per_stratum=1, seed=5)
    for mode, r in res.items():
        assert r["pairs"] == 4000 + 4096 * 17
        assert r["mismatches"] == 0, (mode, r["examples"])


def test_sweep_resumes_from_its_state_file(tmp_path):
    path = str(tmp_path / "state.json")
    st = E.run_exhaustive(("toward_neg",), workers=1, state_path=path, chunk_a=64, max_chunks=2)
    s = st["modes"]["toward_neg"]
    assert sorted(s["done"]) == [0, 64] and s["pairs"] == 2 * 64 * 65536 and s["mismatches"] == 0
    assert not s["complete"]
    st = E.run_exhaustive(("toward_neg",), workers=1, state_path=path, chunk_a=64, max_chunks=1)
    s = json.load(open(path))["modes"]["toward_neg"]
    assert sorted(s["done"]) == [0, 64, 128] and s["pairs"] == 3 * 64 * 65536
    with pytest.raises(NumsimError, match="chunk_a"):
        E.run_exhaustive(("toward_neg",), workers=1, state_path=path, chunk_a=128, max_chunks=1)


def test_sweep_chunk_reports_mismatches_of_a_broken_adder(monkeypatch):
    """The sweep's comparison can fail: swap in an adder that truncates and it reports mismatches."""
    monkeypatch.setattr(E, "c_f16_add_outer", lambda a, b, mode: O.numpy_f16_add(a[:, None], b[None, :], "toward_zero"))
    res = E.sweep_chunk(("nearest_even", 0x3C00, 0x3C08))
    assert res["pairs"] == 8 * 65536 and res["mismatches"] > 10000 and len(res["examples"]) == 10


def test_sweep_resumes_from_a_state_dict_and_reports_progress():
    """The state is data: a run resumes from a dict (no file), skipping finished chunks, and reports
    (chunks finished, total) after each chunk."""
    seen = []
    st = E.run_exhaustive(("nearest_even",), workers=1, state_path=None, chunk_a=16, max_chunks=1,
                          state=E.new_state(("nearest_even",), 16), on_chunk=lambda d, t: seen.append((d, t)))
    assert st["modes"]["nearest_even"]["done"] == [0] and seen == [(1, 4096)]
    st = json.loads(json.dumps(st))                                      # survives a JSON round trip
    st = E.run_exhaustive(("nearest_even",), workers=1, state_path=None, chunk_a=16, max_chunks=1, state=st,
                          on_chunk=lambda d, t: seen.append((d, t)))
    s = st["modes"]["nearest_even"]
    assert s["done"] == [0, 16] and s["pairs"] == 2 * 16 * 65536 and s["mismatches"] == 0
    assert seen == [(1, 4096), (2, 4096)] and not s["complete"]
    assert E.pending_chunks(st, ("nearest_even",), 16)[0] == ("nearest_even", 32, 48)


@pytest.mark.parametrize("kwargs, arg", [
    (dict(modes=("nearest_odd",)), "modes"), (dict(modes=()), "modes"), (dict(chunk_a=100), "chunk_a"),
    (dict(chunk_a=0), "chunk_a"), (dict(workers=0), "workers"), (dict(max_chunks=-1), "max_chunks"),
    (dict(state={"modes": {}}), "state")])
def test_sweep_rejects_bad_arguments_with_numsim_error(kwargs, arg):
    """The library never exits: bad input is a NumsimError naming the argument, before any work."""
    kwargs = dict(dict(workers=1, state_path=None, max_chunks=0), **kwargs)
    with pytest.raises(NumsimError, match=f"^{arg}:"):
        E.run_exhaustive(**kwargs)


def test_unreadable_state_file_is_a_numsim_error(tmp_path):
    p = tmp_path / "state.json"
    p.write_text("not json")
    with pytest.raises(NumsimError, match="^state_path:"):
        E.run_exhaustive(("nearest_even",), workers=1, state_path=str(p), chunk_a=64, max_chunks=0)
    p.write_text(json.dumps({"version": 99, "chunk_a": 64, "modes": {}}))
    with pytest.raises(NumsimError, match="^state_path:"):
        E.run_exhaustive(("nearest_even",), workers=1, state_path=str(p), chunk_a=64, max_chunks=0)


def test_oracles_reject_bad_modes_with_numsim_error():
    with pytest.raises(NumsimError, match="^modes:"):
        E.sample_check(("round_up",))
    with pytest.raises(NumsimError, match="^mode:"):
        O.numpy_f16_add([0x3C00], [0x0001], "stochastic")
    pytest.importorskip("gmpy2", reason="gmpy2 (MPFR) is an optional test oracle")
    with pytest.raises(NumsimError, match="^mode:"):
        O.mpfr_f16_add([0x3C00], [0x0001], "nearest_away")


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    """`numsim verify fp16` turns the library's NumsimError into one line on stderr and exit status 2."""
    import subprocess
    import sys

    for argv in (["--chunk-a", "100"], ["--modes", "bogus"], ["--workers", "0"]):
        r = subprocess.run([sys.executable, "-m", "numsim", "verify", "fp16", "--state", "", "--no-progress", *argv],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)   # not the checkout
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("numsim: error:"), r.stderr
    r = subprocess.run([sys.executable, "-m", "numsim", "verify", "fp16", "--sample", "--modes", "toward_zero"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and "toward_zero   stratified sample: 327680 pairs, 0 mismatches" in r.stdout
