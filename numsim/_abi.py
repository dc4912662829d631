"""Name -> value tables of the C ABI's enums, read once from the built library.

The C headers (csrc/ns_*.h, inside their CDEF blocks) are the one declaration of every enum; cffi
exposes them, and each table here is the enum's constants with the common prefix stripped and the
rest lower-cased (NS_OVF_TO_INF -> "to_inf"). Nothing here re-types a value.
"""
from __future__ import annotations

from ._ffi import ffi


def _table(enum: str, prefix: str) -> dict[str, int]:
    """{name: value} of `enum ns_<enum>`, in value order, names without `prefix`."""
    rel = ffi.typeof(f"enum {enum}").relements
    if not all(k.startswith(prefix) for k in rel):   # a header edit that breaks the naming rule
        raise ImportError(f"numsim: enum {enum} has constants outside the prefix {prefix}")
    return {k[len(prefix):].lower(): v for k, v in sorted(rel.items(), key=lambda kv: (kv[1], kv[0]))}


ROUNDING = _table("ns_rounding", "NS_ROUND_")             # encode and accumulator rounding modes
OVERFLOW = _table("ns_overflow", "NS_OVF_")               # overflow policies
NAN = _table("ns_nan_policy", "NS_NAN_")                  # NaN into a format without NaN
UNDERFLOW = _table("ns_underflow", "NS_UNF_")             # subnormal results: round or flush
SPECIALS = _table("ns_specials", "NS_SPECIALS_")          # which codes are inf / NaN
ORDER = _table("ns_order", "NS_ORDER_")                   # accumulation order of a MAC unit
ODD_UNDERFLOW = _table("ns_odd_underflow", "NS_ODD_")     # the odd-phase trick at exponent field 0 and 1
UNIT_KIND = _table("ns_unit_kind", "NS_UNIT_")            # integer / per-sample shift / float datapath
STATUS = {k: v for k, v in _table("ns_status", "NS_").items()}   # "ok", "err_overflow", ... -> value
CPU = _table("ns_cpu_feature", "NS_CPU_")                 # bits of lib.ns_cpu_features()
