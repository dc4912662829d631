"""The full H100 recordings (../shared/data/h100 next to the repository): every output reproduced bit
for bit by the presets (NaN compared as NaN), counts printed per file and input family.
Runs through the C path (a few seconds for all 4 million outputs)."""
from __future__ import annotations

import os

import pytest

from numsim.verify import family_name, replay_recording

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "h100"))
if not os.path.isdir(DATA):                        # a worktree one level deeper than the main checkout
    DATA = os.path.normpath(os.path.join(REPO, "..", "..", "shared", "data", "h100"))
FILES = ["tc_h100_f16.npz", "tc_h100_bf16.npz", "tc_h100_e4m3.npz", "int_h100.npz", "cublas_h100.npz"]
EXPECTED_OUTPUTS = {"tc_h100_f16.npz": 4096 * 256, "tc_h100_bf16.npz": 4096 * 256, "tc_h100_e4m3.npz": 4096 * 128,
                    "int_h100.npz": 4 * 2048 * 128, "cublas_h100.npz": 6 * 256 * 256}


@pytest.mark.parametrize("fname", FILES)
def test_full_recording_bit_exact(fname):
    path = os.path.join(DATA, fname)
    if not os.path.exists(path):
        pytest.skip(f"the H100 recordings are not here ({path} missing: they live in ../shared/data/h100 "
                    f"of the numsim workspace, not in the repository)")
    rows = replay_recording(path)
    total = matched = 0
    for r in rows:
        print(f"{fname:18} {r['label']:9} {r['unit']:18} family {r['family']} {family_name(r):26} "
              f"{r['matched']:>7}/{r['total']:<7}")
        total += r["total"]
        matched += r["matched"]
    print(f"{fname}: {matched}/{total}")
    assert total == EXPECTED_OUTPUTS[fname]
    misses = [(r["label"], r["family"], r["first_miss"]) for r in rows if r["matched"] != r["total"]]
    assert matched == total, misses
