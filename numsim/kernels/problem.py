"""The GEMM problem every kernel takes (checked by the unit's `problem` before any kernel runs)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Problem:
    a: np.ndarray                  # (M, K) codes of unit.a_fmt
    b: np.ndarray                  # (K, N) codes of unit.b_fmt
    c: np.ndarray | None = None    # (M, N) uint32 initial accumulator codes, or None (code 0)
    ctx: dict = field(default_factory=dict)   # per-k parameters (align_shift / sample_shift int32 (K,)), scales
    nthreads: int = 1

    @property
    def shape(self):
        return self.a.shape[0], self.a.shape[1], self.b.shape[1]
