"""Rounding modes, overflow policies and the reproducible source of stochastic-rounding bits.

Nothing here is global state: every encode names its mode, policy and seed explicitly.
"""
from __future__ import annotations

from . import _abi
from .errors import NumsimError

# the C enums' tables (numsim._abi reads them from the built library)
ROUNDING_MODES = _abi.ROUNDING
_ROUNDING_ALIASES = {
    "rne": "nearest_even", "nearest": "nearest_even", "rna": "nearest_away", "rtz": "toward_zero",
    "truncate": "toward_zero", "down": "toward_neg", "floor": "toward_neg", "rtn": "toward_neg",
    "up": "toward_pos", "ceil": "toward_pos", "rtp": "toward_pos", "sr": "stochastic",
}
OVERFLOW_POLICIES = _abi.OVERFLOW
NAN_POLICIES = _abi.NAN
UNDERFLOW_POLICIES = _abi.UNDERFLOW


def _canon(s):
    return s.strip().lower().replace("-", "_") if isinstance(s, str) else s


def rounding_mode(mode, arg="rounding") -> str:
    m = _canon(mode)
    m = _ROUNDING_ALIASES.get(m, m)
    if m not in ROUNDING_MODES:
        raise NumsimError(f"{arg}: expected one of {sorted(ROUNDING_MODES)}, got {mode!r}")
    return m


def overflow_policy(policy, fmt, arg="overflow") -> str:
    """Resolve an overflow policy for `fmt`; None picks the format's default."""
    if policy is None:
        return "to_inf" if getattr(fmt, "has_inf", False) else "saturate"
    p = _canon(policy)
    if p not in OVERFLOW_POLICIES:
        raise NumsimError(f"{arg}: expected one of {sorted(OVERFLOW_POLICIES)}, got {policy!r}")
    if p == "to_inf" and not fmt.has_inf:
        raise NumsimError(f"{arg}: 'to_inf' needs a format with inf; {fmt} has none")
    if p == "to_nan" and not fmt.has_nan:
        raise NumsimError(f"{arg}: 'to_nan' needs a format with NaN; {fmt} has none")
    if p == "wrap" and fmt.kind != "int":
        raise NumsimError(f"{arg}: 'wrap' is for integer formats; {fmt} is a float format")
    if p == "wrap" and getattr(fmt, "symmetric", False):
        raise NumsimError(f"{arg}: 'wrap' is undefined for the symmetric format {fmt}")
    return p


def nan_policy(policy, arg="nan") -> str:
    p = _canon(policy)
    if p not in NAN_POLICIES:
        raise NumsimError(f"{arg}: expected one of {sorted(NAN_POLICIES)}, got {policy!r}")
    return p


def underflow_policy(policy, arg="underflow") -> str:
    p = _canon(policy)
    if p not in UNDERFLOW_POLICIES:
        raise NumsimError(f"{arg}: expected one of {sorted(UNDERFLOW_POLICIES)}, got {policy!r}")
    return p


def random_bits(seed: int, index, nbits: int = 32):
    """The counter-based generator's bits for (seed, flat index); numpy arrays of indices work."""
    import numpy as np

    from ._ffi import lib

    idx = np.ascontiguousarray(np.asarray(index, dtype=np.uint64))
    if not 1 <= int(nbits) <= 32:
        raise NumsimError(f"nbits: expected 1..32, got {nbits}")
    out = np.empty(idx.shape, dtype=np.uint32)
    flat = idx.reshape(-1)
    o = out.reshape(-1)
    for i in range(flat.size):  # small helper for tests and tools; kernels draw their own bits
        o[i] = lib.ns_random_bits(int(seed) & (2**64 - 1), int(flat[i]), int(nbits))
    return out if out.ndim else int(out)
