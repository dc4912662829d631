"""The shared H100 recordings replayed through numsim.gpu's kernels (tests/test_gpu_triton.py on a
subset under the interpreter, tools/gpu/check.py on every tile on a GPU): the same tiles, units and
NaN-as-NaN comparison as numsim.verify.replay_recording, each tile one numsim.gpu.gemm_codes call."""
from __future__ import annotations

import os

import numpy as np

FILES = ("tc_h100_f16.npz", "tc_h100_bf16.npz", "tc_h100_e4m3.npz", "cublas_h100.npz", "int_h100.npz")


def replay_gpu(path, dev, tiles_per_family=None):
    """Rows (file, label, unit, matched, total, tiles on a GPU kernel, tiles) for one recording file."""
    import torch

    from .. import FusedDotUnit, get_unit
    from ..verify.recordings import _operand_codes, _same_bits, _tile_groups
    from .entry import gemm_codes

    z = np.load(path)
    rows = []
    for g in _tile_groups(z, path):
        u = get_unit(g["unit"])
        is_float = isinstance(u, FusedDotUnit)
        fam = g["family"]
        tiles = np.arange(g["A"].shape[0])
        if tiles_per_family:
            tiles = np.sort(np.concatenate([np.nonzero(fam == f)[0][:tiles_per_family] for f in np.unique(fam)]))
        ok = total = on_gpu = 0
        for t in tiles:
            a = _operand_codes(g["A"][t], g["fmt"]).astype(np.int64)
            b = _operand_codes(g["B"][t], g["fmt"]).astype(np.int64)
            c = None
            if g["C"] is not None:
                c = g["C"][t].view(np.uint32) if is_float else g["C"][t].astype(np.int32).view(np.uint32)
                c = torch.from_numpy(c.astype(np.int64)).to(dev)
            r = gemm_codes(u, torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev), c=c)
            on_gpu += "fallback" not in r.info
            eq = _same_bits(r.codes.cpu().numpy().astype(np.uint32), g["D"][t], is_float)
            ok += int(eq.sum())
            total += eq.size
        rows.append((os.path.basename(path), g["label"], u.name, ok, total, on_gpu, len(tiles)))
    return rows
