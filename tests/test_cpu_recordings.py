"""Issue 19: the CPU's own dot-product instructions, recorded on whatever CPU runs the tests.

Each test records fresh adversarial tiles through the instruction (csrc/cpurec*.c) and requires 100%
of them from the matching preset; an instruction this CPU lacks is skipped with the reason. The
recordings shipped in tests/data/cpu (made on this project's Intel Xeon, vendor/model/flags inside) are
replayed too, on any machine.
"""
import glob
import json
import os

import numpy as np
import pytest

import numsim
from numsim.errors import NumsimError
from numsim.verify import cpu_recorder as cr
from numsim.verify.recordings import replay_recording

MODELLED = [i for i, v in cr.INSTRUCTIONS.items() if v[0]]
SHIPPED = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "data", "cpu", "*.npz")))


def _all_match(rows):
    return all(r["matched"] == r["total"] for r in rows), [(r["family"], r["matched"], r["total"]) for r in rows]


@pytest.mark.parametrize("instruction", MODELLED)
def test_fresh_recording_matches_its_preset(instruction, tmp_path):
    if not cr.available(instruction):
        pytest.skip(f"{instruction} is not available on this CPU/OS")
    path = cr.record(instruction, str(tmp_path / f"{instruction}.npz"), tiles=40, seed=11)
    ok, rows = _all_match(replay_recording(path))
    assert ok, rows


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_recordings_replay(path):
    z = np.load(path)
    meta = json.loads(str(z["meta_json"]))
    assert meta["cpu"]["vendor"] and meta["instruction"]
    if not str(z["unit"]):
        with pytest.raises(NumsimError, match="no preset models"):
            replay_recording(path)
        return
    ok, rows = _all_match(replay_recording(path))
    assert ok, rows


def test_small_integer_family_proves_the_layouts():
    """Family 0 is exact in every format: D = A B + C exactly, which fixes the recorder's layouts
    (tdpbf16ps included, which no preset models yet)."""
    for ins in cr.INSTRUCTIONS:
        if not cr.available(ins):
            continue
        A, B, C, fam = cr.make_tiles(ins, tiles=2, seed=5)
        D = cr.run_instruction(ins, A[:1], B[:1], C[:1])
        fmt = cr.INSTRUCTIONS[ins][1]
        if fmt in ("bf16", "fp16"):
            conv = (lambda x: (x.astype(np.uint32) << 16).view(np.float32)) if fmt == "bf16" else \
                (lambda x: x.view(np.float16).astype(np.float32))
            cv = C[:1].view(np.float32) if C.dtype == np.uint32 else C[:1].view(np.float16).astype(np.float32)
            want = np.einsum("tmk,tkn->tmn", conv(A[:1]).astype(np.float64), conv(B[:1]).astype(np.float64)) + cv
            got = D.view(np.float32) if D.dtype == np.uint32 else D.view(np.float16).astype(np.float32)
        else:
            want = np.einsum("tmk,tkn->tmn", A[:1].astype(np.int64), B[:1].astype(np.int64)) + C[:1]
            got = D
        assert np.array_equal(got.astype(np.float64), want.astype(np.float64)), ins


def test_vdpbf16ps_model_alternatives_are_refuted_by_the_recording():
    """The odd-first, one-rounding-per-add, DAZ/FTZ model is what the silicon does; the even-first order
    and keeping subnormals each miss recorded lanes (when the CPU has the instruction)."""
    path = [p for p in SHIPPED if p.endswith("_vdpbf16ps.npz")][0]
    ok, _ = _all_match(replay_recording(path, unit=numsim.get_unit("x86_vdpbf16ps")))
    assert ok
    for alt in (dict(pair_order="even_first"), dict(ftz=False)):
        ok, _ = _all_match(replay_recording(path, unit=numsim.get_unit("x86_vdpbf16ps", **alt)))
        assert not ok, alt


def test_recorder_refuses_bad_input():
    with pytest.raises(NumsimError, match="instruction"):
        cr.make_tiles("vfmaddXXX")
    with pytest.raises(NumsimError, match="tiles"):
        cr.make_tiles("vdpbf16ps", tiles=0)
    with pytest.raises(NumsimError, match="A, B, C"):
        cr.run_instruction("vdpbf16ps", np.zeros((1, 8, 4), np.uint16), np.zeros((1, 4, 2), np.uint16),
                           np.zeros((1, 8, 2), np.uint32))
