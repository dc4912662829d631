"""Berkeley TestFloat's test-vector lines, read and written: numsim's standalone operations checked
against `testfloat_gen`, and numsim-generated vectors in the same format for the formats TestFloat
lacks (fp8, fp6, fp4, bf16 arithmetic, radix-4 FP4).

A line is the operands, the expected result and the exception flags, in hex, separated by spaces:
``3C00 3C00 4000 00`` for ``f16_add``. The flags are two hex digits of TestFloat's 5-bit mask (bit 0
inexact, 1 underflow, 2 overflow, 3 infinite, 4 invalid), the same bits as numsim.fpops's flags.

Function names are TestFloat's: ``<fmt>_add``, ``_sub``, ``_mul``, ``_div``, ``_mulAdd`` and
``<fmt>_to_<fmt>``, where <fmt> is TestFloat's ``f16``, ``f32`` or ``bf16``, or any numsim float
format name (``fp8_e4m3fn_mulAdd``, ``fp4_e2m1_to_f16``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from .. import fpops
from ..errors import NumsimError, bad
from ..formats import REGISTRY, FloatFormat, IntFormat, get_format

# TestFloat's type names for the formats it shares with numsim.
TESTFLOAT_FORMATS = {"f16": "fp16", "f32": "fp32", "bf16": "bf16", "i32": "int32", "ui32": "uint32"}
OPS = {"add": ("add", 2), "sub": ("sub", 2), "mul": ("mul", 2), "div": ("div", 2), "mulAdd": ("fma", 3)}
# TestFloat's rounding options (-r<name>) and the short names numsim's CLI accepts.
ROUNDING = {"near_even": "nearest_even", "minMag": "toward_zero", "min": "toward_neg", "max": "toward_pos",
            "near_maxMag": "nearest_away", "odd": "odd",
            "rne": "nearest_even", "rtz": "toward_zero", "rdn": "toward_neg", "rup": "toward_pos",
            "rna": "nearest_away", "rod": "odd"}
TESTFLOAT_ROUNDING_OPTION = {"nearest_even": "near_even", "toward_zero": "minMag", "toward_neg": "min",
                             "toward_pos": "max", "nearest_away": "near_maxMag", "odd": "odd"}


def _fmt_name(name: str, integers=False):
    """numsim format of a TestFloat or numsim type name (integer formats only where `integers`)."""
    key = TESTFLOAT_FORMATS.get(name, name)
    f = REGISTRY.get(key)
    if isinstance(f, FloatFormat) or (integers and isinstance(f, IntFormat)):
        return f
    return None


def testfloat_name(fmt) -> str:
    """The type name used in function names: TestFloat's where it has one, else numsim's."""
    f = get_format(fmt)
    for tf, ns in TESTFLOAT_FORMATS.items():
        if REGISTRY[ns] == f:
            return tf
    return str(f)


@dataclass(frozen=True)
class Function:
    """One TestFloat function: the operation, the operand format and the result format."""

    name: str
    kind: str          # add, sub, mul, div, fma, convert
    in_fmt: FloatFormat
    out_fmt: FloatFormat

    @property
    def n_operands(self) -> int:
        return 3 if self.kind == "fma" else 1 if self.kind == "convert" else 2

    def operand_formats(self):
        if self.kind == "fma":
            return [self.in_fmt, self.in_fmt, self.out_fmt]
        return [self.in_fmt] * self.n_operands


def parse_function(name) -> Function:
    """A TestFloat function name (``f16_add``, ``f32_to_f16``, ``fp8_e5m2_mulAdd``)."""
    if not isinstance(name, str):
        raise bad("op", "a TestFloat function name such as 'f16_add'", repr(name))
    m = re.fullmatch(r"(\w+?)_to_(\w+)", name)
    if m:
        a, z = _fmt_name(m.group(1), True), _fmt_name(m.group(2), True)
        if a is not None and z is not None and (isinstance(a, FloatFormat) or isinstance(z, FloatFormat)):
            return Function(name, "convert", a, z)
    m = re.fullmatch(r"(\w+)_(add|sub|mul|div|mulAdd)", name)
    if m and _fmt_name(m.group(1)) is not None:
        f = _fmt_name(m.group(1))
        return Function(name, OPS[m.group(2)][0], f, f)
    raise bad("op", "<fmt>_add|sub|mul|div|mulAdd or <fmt>_to_<fmt>, <fmt> one of f16, f32, bf16 or a numsim "
              "float format name", repr(name))


def parse_rounding(mode) -> str:
    """numsim's rounding name of a TestFloat rounding option (near_even, minMag, ...) or numsim name."""
    if isinstance(mode, str):
        key = mode.removeprefix("-r")
        if key in ROUNDING:
            return ROUNDING[key]
    return fpops.fp_rounding(mode)


@dataclass
class Vectors:
    """Parsed lines: operands (one uint32 array per operand), expected results and flags."""

    function: Function
    operands: list
    expected: np.ndarray
    flags: np.ndarray

    def __len__(self):
        return int(self.expected.size)


_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _HEX[_c] = 10 + _i


def _read_text(source):
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, str) and "\n" not in source and os.path.exists(source):
        with open(source, "rb") as fh:
            return fh.read()
    if isinstance(source, os.PathLike):
        with open(source, "rb") as fh:
            return fh.read()
    if isinstance(source, str):
        return source.encode()
    if isinstance(source, (list, tuple)):
        return "\n".join(source).encode()
    raise bad("lines", "a path, a string, bytes or a list of lines", type(source).__name__)


def parse_lines(source, op) -> Vectors:
    """Parse testfloat_gen output (a path, text, bytes or list of lines) for the function `op`."""
    fn = op if isinstance(op, Function) else parse_function(op)
    data = _read_text(source)
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    nfields = fn.n_operands + 2
    if not lines:
        return Vectors(fn, [np.zeros(0, np.uint32) for _ in range(fn.n_operands)], np.zeros(0, np.uint32),
                       np.zeros(0, np.uint8))
    width = len(lines[0])
    if all(len(ln) == width for ln in lines) and width < 128:
        # fixed-width lines (what testfloat_gen writes): decode every hex digit at once
        table = np.frombuffer(b"".join(lines), dtype=np.uint8).reshape(len(lines), width)
        cols = [i for i, ch in enumerate(lines[0]) if ch == 32]
        bounds = list(zip([0] + [c + 1 for c in cols], cols + [width]))
        if len(bounds) != nfields or (table[:, cols] != 32).any():
            return _parse_slow(lines, fn)
        digits = _HEX[table]
        values = []
        for lo, hi in bounds:
            d = digits[:, lo:hi]
            if (d == 255).any():
                bad_row = int(np.flatnonzero((d == 255).any(axis=1))[0])
                raise bad("lines", "hex fields", f"{lines[bad_row].decode(errors='replace')!r} (line {bad_row + 1})")
            v = np.zeros(len(lines), dtype=np.uint64)
            for j in range(hi - lo):
                v = (v << np.uint64(4)) | d[:, j].astype(np.uint64)
            values.append(v)
    else:
        return _parse_slow(lines, fn)
    return _vectors(fn, values, lines)


def _parse_slow(lines, fn):
    nfields = fn.n_operands + 2
    rows = []
    for i, ln in enumerate(lines):
        parts = ln.split()
        if len(parts) != nfields:
            raise bad("lines", f"{nfields} hex fields per line for {fn.name}",
                      f"{ln.decode(errors='replace')!r} (line {i + 1})")
        try:
            rows.append([int(p, 16) for p in parts])
        except ValueError:
            raise bad("lines", "hex fields", f"{ln.decode(errors='replace')!r} (line {i + 1})") from None
    a = np.array(rows, dtype=np.uint64).reshape(-1, nfields)
    return _vectors(fn, [a[:, j] for j in range(nfields)], lines)


def _vectors(fn, values, lines):
    fmts = fn.operand_formats() + [fn.out_fmt]
    for j, (v, f) in enumerate(zip(values, fmts)):
        if v.size and int(v.max()) >= 2**f.bits:
            row = int(np.flatnonzero(v >= 2**f.bits)[0])
            raise bad("lines", f"field {j + 1} a code of {f}", f"{lines[row].decode(errors='replace')!r} "
                      f"(line {row + 1})")
    if values[-1].size and int(values[-1].max()) >= 32:
        row = int(np.flatnonzero(values[-1] >= 32)[0])
        raise bad("lines", "a 5-bit flag field", f"{lines[row].decode(errors='replace')!r} (line {row + 1})")
    return Vectors(fn, [v.astype(np.uint32) for v in values[:-2]], values[-2].astype(np.uint32),
                   values[-1].astype(np.uint8))


def compute(fn, operands, rounding="nearest_even", tininess="after", nan_rule="x86", overflow=None, exact=False):
    """numsim's (codes, flags) for a function's operand arrays (exact: TestFloat's -exact, for
    conversions to integers)."""
    fn = fn if isinstance(fn, Function) else parse_function(fn)
    kw = dict(overflow=overflow, tininess=tininess, nan_rule=nan_rule)
    if fn.kind == "convert":
        return fpops.convert(operands[0], fn.in_fmt, fn.out_fmt, rounding, exact=exact and fn.out_fmt.kind == "int",
                             **kw)
    if fn.kind == "fma":
        return fpops.fma(*operands, fn.in_fmt, rounding, out_fmt=fn.out_fmt, **kw)
    return getattr(fpops, fn.kind)(*operands, fn.in_fmt, rounding, out_fmt=fn.out_fmt, **kw)


def _is_nan(codes, fmt):
    from ..codec import decode

    return np.isnan(decode(codes.astype(fmt.dtype), fmt))


@dataclass
class CheckResult:
    """How many vectors passed; the first failures as (line number, operands, expected, flags, got, flags)."""

    function: str
    rounding: str
    total: int
    failed: int
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.total - self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        return f"{self.function} {self.rounding}: {self.passed}/{self.total} passed" + (
            "" if self.ok else f", {self.failed} failed")


def check(vectors, op=None, rounding="nearest_even", tininess="after", nan_rule="x86", exact_nans=True,
          max_failures=20, exact=False) -> CheckResult:
    """Check numsim against parsed vectors (or lines / a path with `op`): result codes and flags.

    exact_nans=False accepts any NaN for a NaN result, as testfloat_ver does without -checkNaNs."""
    if not isinstance(vectors, Vectors):
        if op is None:
            raise bad("op", "the TestFloat function the lines are for", None)
        vectors = parse_lines(vectors, op)
    fn = vectors.function
    mode = parse_rounding(rounding)
    got, got_flags = compute(fn, vectors.operands, mode, tininess, nan_rule, exact=exact)
    got = got.astype(np.uint32)
    same = got == vectors.expected
    if not exact_nans and fn.out_fmt.kind == "float":
        same |= _is_nan(got, fn.out_fmt) & _is_nan(vectors.expected, fn.out_fmt)
    bad_rows = np.flatnonzero(~same | (got_flags != vectors.flags))
    failures = []
    for r in bad_rows[:max_failures]:
        failures.append((int(r) + 1, [int(o[r]) for o in vectors.operands], int(vectors.expected[r]),
                         int(vectors.flags[r]), int(got[r]), int(got_flags[r])))
    return CheckResult(fn.name, mode, len(vectors), int(bad_rows.size), failures)


def format_failure(fn, failure) -> str:
    fn = fn if isinstance(fn, Function) else parse_function(fn)
    line, ops, exp, eflags, got, gflags = failure
    fmts = fn.operand_formats()
    o = " ".join(_hex(v, f) for v, f in zip(ops, fmts))
    return (f"line {line}: {o} expected {_hex(exp, fn.out_fmt)} flags {eflags:02X} "
            f"[{','.join(fpops.flag_names(eflags))}], numsim {_hex(got, fn.out_fmt)} flags {gflags:02X} "
            f"[{','.join(fpops.flag_names(gflags))}]")


# ---- generation: TestFloat's operand patterns for any format -----------------------------------------

def _hex(v, fmt):
    return f"{int(v):0{(fmt.bits + 3) // 4}X}"


def _field_set(fmt, level):
    top = 2**fmt.exp_bits - 1
    if level >= 2 and top <= 31:
        return list(range(top + 1))
    b = fmt.bias
    span = 2 if level == 1 else 4
    cand = set(range(0, span + 1)) | set(range(b - span, b + span + 1)) | set(range(top - span, top + 1))
    return sorted(v for v in cand if 0 <= v <= top)


def _significand_set(fmt, level):
    """TestFloat's significand patterns (f16P1 / f16P2) for an M-bit mantissa."""
    M = fmt.man_bits
    if M == 0:
        return [0]
    full = 2**M - 1
    if level == 1:
        pats = {0, 1, full, full - 1}
    else:
        pats = {0, full}
        for i in range(M):
            pats.add(1 << i)                              # one bit set
            pats.add(full ^ ((1 << i) - 1))               # ones from the top
            pats.add(full ^ (1 << i))                     # all ones but one
            pats.add((1 << i) - 1)                        # ones from the bottom
    return sorted(p for p in pats if 0 <= p <= full)


def operand_codes(fmt, level=1) -> np.ndarray:
    """The corner operands of a format at TestFloat level 1 or 2: boundary exponent fields times
    significand patterns, both signs. Formats of 8 bits or fewer at level 2: every code."""
    f = get_format(fmt)
    if not isinstance(f, FloatFormat):
        raise bad("fmt", "a float format", f)
    if level not in (1, 2):
        raise bad("level", "1 or 2", level)
    if level == 2 and f.bits <= 8:
        return np.arange(2**f.bits, dtype=np.uint32)
    codes = set()
    for s in (0, 1):
        for e in _field_set(f, level):
            for m in _significand_set(f, level):
                codes.add((s << (f.bits - 1)) | (e << f.man_bits) | m)
    return np.array(sorted(codes), dtype=np.uint32)


def generate(op, level=1, rounding="nearest_even", tininess="after", nan_rule="x86", max_cases=2_000_000,
             seed=1):
    """numsim-computed vectors for a function: every combination of the level's corner operands
    (at most max_cases; beyond that a seeded random sample of the combinations). Returns Vectors."""
    fn = op if isinstance(op, Function) else parse_function(op)
    if not isinstance(max_cases, (int, np.integer)) or max_cases < 1:
        raise bad("max_cases", "a positive integer", max_cases)
    sets = [operand_codes(f, level) for f in fn.operand_formats()]
    total = 1
    for s in sets:
        total *= s.size
    if total <= max_cases:
        grids = np.meshgrid(*sets, indexing="ij")
        operands = [g.reshape(-1) for g in grids]
    else:
        rng = np.random.default_rng(seed)
        operands = [s[rng.integers(0, s.size, int(max_cases))] for s in sets]
    codes, flags = compute(fn, operands, parse_rounding(rounding), tininess, nan_rule)
    return Vectors(fn, operands, codes.astype(np.uint32), flags)


def format_lines(vectors: Vectors) -> str:
    """The vectors as TestFloat lines (hex operands, result, two-digit flags)."""
    fn = vectors.function
    fmts = fn.operand_formats() + [fn.out_fmt]
    cols = [np.char.zfill(np.char.upper(np.char.mod("%x", v.astype(np.int64))), (f.bits + 3) // 4)
            for v, f in zip(vectors.operands + [vectors.expected], fmts)]
    cols.append(np.char.zfill(np.char.upper(np.char.mod("%x", vectors.flags.astype(np.int64))), 2))
    out = cols[0]
    for c in cols[1:]:
        out = np.char.add(np.char.add(out, " "), c)
    return "\n".join(out.tolist()) + ("\n" if len(vectors) else "")


# ---- running Berkeley testfloat_gen ------------------------------------------------------------------------

TESTFLOAT_SHARED_OPS = ["f16_add", "f16_sub", "f16_mul", "f16_div", "f16_mulAdd", "f32_add", "f32_sub", "f32_mul",
                        "f32_div", "f32_mulAdd", "f16_to_f32", "f32_to_f16", "f16_to_i32", "f16_to_ui32",
                        "f32_to_i32", "f32_to_ui32", "i32_to_f16", "ui32_to_f16", "i32_to_f32", "ui32_to_f32"]


def testfloat_gen_path(exe=None):
    """The testfloat_gen executable: `exe`, or the one on PATH (None when there is none)."""
    import shutil

    return shutil.which(exe or "testfloat_gen")


def run_testfloat_gen(op, level=1, rounding="nearest_even", tininess="after", max_lines=None, every=1, exe=None,
                      seed=None, exact=False) -> bytes:
    """testfloat_gen's lines for one function, mode and tininess rule. max_lines stops the stream
    after that many lines were read (level 2 of mulAdd is 10^9 cases); every=k keeps every k-th."""
    import subprocess

    path = testfloat_gen_path(exe)
    if path is None:
        raise NumsimError("exe: testfloat_gen is not on PATH; build it with tools/testfloat.sh")
    fn = op if isinstance(op, Function) else parse_function(op)
    if level not in (1, 2):
        raise bad("level", "1 or 2", level)
    mode = TESTFLOAT_ROUNDING_OPTION[parse_rounding(rounding)]
    tin = fpops.tininess_rule(tininess)
    if not isinstance(every, (int, np.integer)) or every < 1:
        raise bad("every", "a positive integer", every)
    cmd = [path, "-level", str(level), "-r" + mode, "-tininess" + tin, "-exact" if exact else "-notexact"]
    if seed is not None:
        cmd += ["-seed", str(int(seed))]
    proc = subprocess.Popen(cmd + [fn.name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = []
    try:
        for i, line in enumerate(proc.stdout):
            if max_lines is not None and i >= max_lines:
                break
            if i % every == 0:
                out.append(line)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        rc = proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
    if rc not in (0, -9) and not out:
        raise NumsimError(f"op: testfloat_gen failed for {fn.name}: {err}")
    return b"".join(out)


def run_suite(ops=None, modes=None, tininess=("after",), level=1, max_lines=None, every=1, nan_rule="x86",
              exe=None, on_result=None, exact=False):
    """Check numsim against testfloat_gen for every function x rounding mode x tininess rule.
    Returns the CheckResults (each with its tininess rule in .rounding's neighbour, .tininess)."""
    ops = list(ops or TESTFLOAT_SHARED_OPS)
    modes = [parse_rounding(m) for m in (modes or list(TESTFLOAT_ROUNDING_OPTION))]
    results = []
    for op in ops:
        fn = parse_function(op)
        for tin in tininess:
            for mode in modes:
                lines = run_testfloat_gen(fn, level, mode, tin, max_lines, every, exe, exact=exact)
                r = check(lines, fn, mode, tininess=tin, nan_rule=nan_rule, exact=exact)
                r.tininess = fpops.tininess_rule(tin)
                results.append(r)
                if on_result:
                    on_result(r)
    return results
