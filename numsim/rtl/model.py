"""Cycle-level golden model of a MAC unit for RTL testbenches, and the port/vector layout it implies.

The RTL contract (what the example units in examples/rtl implement, and what the vectors encode):

    always @(posedge clk)
        if (rst)        acc <= 0;                          // code 0 (+0 for float accumulators)
        else if (valid) acc <= (load ? c : acc) (+) term(a, b, shift);
        else if (load)  acc <= c;
    assign y = finish(acc);                                // odd phase: the FP16 exponent trick

`(+) term` is one `unit.step`: for integer units acc + widen(a * b) << align_shift under the unit's
overflow policies; for float units acc + the exact sum of the k_step lane products, rounded once.
That is the sequential order; for chunked and pairwise units the model keeps the terms of the open
chunk (or tree) and its output equals unit.dot over the terms since the last load (docs/rtl.md).
Every bus carries codes: two's complement for signed integer fields, the format's bit pattern for
float fields; lane i of a multi-lane bus sits at bits [i*lane_bits +: lane_bits].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import bad
from ..formats import IntFormat
from ..units import Unit, get_unit


@dataclass(frozen=True)
class Field:
    """One port / vector field: `lanes` codes of `lane_bits` each, lane 0 in the low bits."""

    name: str
    lane_bits: int
    lanes: int = 1
    signed: bool = False      # two's complement integer (per lane)
    role: str = "in"          # 'in' (stimulus) or 'out' (expected)
    fmt: str = ""             # the numsim format of each lane ('' for control bits)
    optional: bool = False    # a DUT may leave this port out (then it is not checked): the flags

    @property
    def bits(self) -> int:
        return self.lane_bits * self.lanes


def _fmt_signed(fmt) -> bool:
    return isinstance(fmt, IntFormat) and fmt.signed


def _fmt_name(fmt) -> str:
    return getattr(fmt, "name", None) or str(fmt)


def _unit_kind(unit):
    """'int', 'sample_shift', 'float' (the numsim.units MACs) or 'generic' (any other unit with step(state, a, b)
    over lanes: the hardware presets): which step signature the unit has."""
    from ..units import FloatMacUnit, IntMacUnit, SampleShiftUnit

    if isinstance(unit, IntMacUnit):
        return "int"
    if isinstance(unit, SampleShiftUnit):
        if unit.grouping != "per_sample":
            raise bad("unit", "a per_sample-grouped sample-shift unit (per_shift grouping keeps five "
                      "accumulators, which have no single-register step model)", f"grouping={unit.grouping!r}")
        return "sample_shift"
    if isinstance(unit, FloatMacUnit):
        return "float"
    if (isinstance(unit, Unit) and type(unit).step is not Unit.step and _generic_lanes(unit)
            and all(hasattr(getattr(unit, f, None), "bits") for f in ("a_fmt", "b_fmt", "acc_fmt"))):
        return "generic"
    raise bad("unit", "a MAC unit with a step model (numsim.units MACs, or a unit with step(state, a, b) "
              "over k_step lanes)", type(unit).__name__)


def int_shift_in_use(unit) -> bool:
    """Whether an integer MAC's per-k align_shift is in use: only when the widened register has room
    above the product (widen_bits > a_bits + b_bits). Otherwise every non-zero shift of a full-range
    product overflows the widened register, so the hardware has no shift (a plain INT8 MAC: int8 x
    int8 widened to 16 bits) and the RTL has no align_shift port; the model then adds shift 0."""
    return unit.widen_bits > unit.a_fmt.bits + unit.b_fmt.bits


def _generic_lanes(unit):
    n = getattr(unit, "k_step", None)
    return n if isinstance(n, int) and 1 <= n <= 256 else None


FLAGS_BITS = 5                 # invalid, infinite (divide by zero), overflow, underflow, inexact: bits 4..0
FLAGS_FORMAT = "ieee_flags"    # SoftFloat's flag bits: 1 inexact, 2 underflow, 4 overflow, 8 infinite, 16 invalid


class Layout:
    """The fields of a unit's RTL ports, in vector-word order from the most significant bit down.

    Inputs: rst, load, valid, c (accumulator code loaded when load), a, b, and the per-k shift when
    the unit takes one. Outputs: flags (integer and float MACs: the IEEE flags of the cycle's
    updates, an optional port), acc (the unit's output after finish), and out (the output stage's
    code) when the unit has one. The expected outputs sit in the low bits of a vector word.
    """

    def __init__(self, unit):
        self.unit = unit
        self.kind = _unit_kind(unit)
        acc = unit.acc_fmt
        lanes = {"float": getattr(unit, "k_step", 1), "generic": _generic_lanes(unit)}.get(self.kind, 1)
        f = [Field("rst", 1), Field("load", 1), Field("valid", 1),
             Field("c", acc.bits, 1, _fmt_signed(acc), "in", _fmt_name(acc)),
             Field("a", unit.a_fmt.bits, lanes, _fmt_signed(unit.a_fmt), "in", _fmt_name(unit.a_fmt)),
             Field("b", unit.b_fmt.bits, lanes, _fmt_signed(unit.b_fmt), "in", _fmt_name(unit.b_fmt))]
        if self.kind == "int" and int_shift_in_use(unit):
            bits = int(unit._ctx_range[1]).bit_length()          # the unit's align_shift range 0..31
            f.append(Field("align_shift", bits, 1, False, "in", f"uint{bits}"))
        elif self.kind == "sample_shift":
            f.append(Field("sample_shift", 3, 1, False, "in", "uint3"))
        if self.kind in ("int", "float"):
            # the IEEE flags of the cycle's register updates (numsim.fpops bit order), above the outputs
            # so that acc and out keep their offsets; a DUT without a flags port is checked on acc alone
            f.append(Field("flags", FLAGS_BITS, 1, False, "out", FLAGS_FORMAT, optional=True))
        f.append(Field("acc", acc.bits, 1, _fmt_signed(acc), "out", _fmt_name(acc)))
        out_fmt = unit.out_fmt
        if out_fmt is not None:
            f.append(Field("out", out_fmt.bits, 1, _fmt_signed(out_fmt), "out", _fmt_name(out_fmt)))
        self.fields = f
        self.by_name = {x.name: x for x in f}
        off = 0
        self.offsets = {}
        for x in reversed(f):
            self.offsets[x.name] = off
            off += x.bits
        self.word_bits = off

    @property
    def shift_name(self):
        """The per-k shift port, or None when the unit has none in use."""
        for name in ("align_shift", "sample_shift"):
            if name in self.by_name:
                return name
        return None

    def field(self, name) -> Field:
        if name not in self.by_name:
            raise bad("field", f"one of {[x.name for x in self.fields]}", repr(name))
        return self.by_name[name]

    def pack(self, values: dict) -> int:
        """One vector word from {field: code or list of lane codes} (missing inputs are 0)."""
        word = 0
        for x in self.fields:
            v = values.get(x.name, 0)
            word |= self.join_lanes(x, v) << self.offsets[x.name]
        return word

    def unpack(self, word: int) -> dict:
        """{field: code (one lane) or list of lane codes} of a vector word."""
        if not isinstance(word, (int, np.integer)) or word < 0 or word >> self.word_bits:
            raise bad("word", f"a {self.word_bits}-bit vector word", repr(word))
        out = {}
        for x in self.fields:
            v = (int(word) >> self.offsets[x.name]) & ((1 << x.bits) - 1)
            out[x.name] = self.split_lanes(x, v)
        return out

    @staticmethod
    def join_lanes(x: Field, v) -> int:
        lanes = list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]
        if len(lanes) != x.lanes:
            raise bad(x.name, f"{x.lanes} lane code(s)", f"{len(lanes)}")
        word = 0
        for i, code in enumerate(lanes):
            code = int(code)
            if not 0 <= code < (1 << x.lane_bits):
                raise bad(x.name, f"{x.lane_bits}-bit codes", code)
            word |= code << (i * x.lane_bits)
        return word

    @staticmethod
    def split_lanes(x: Field, v: int):
        if x.lanes == 1:
            return v
        m = (1 << x.lane_bits) - 1
        return [(v >> (i * x.lane_bits)) & m for i in range(x.lanes)]

    def describe(self) -> list:
        """The field table of the manifest: name, lsb offset, width, lanes, signedness, format, role."""
        return [{"name": x.name, "lsb": self.offsets[x.name], "bits": x.bits, "lanes": x.lanes,
                 "lane_bits": x.lane_bits, "signed": x.signed, "format": x.fmt, "role": x.role}
                for x in self.fields]


# ---- signal values <-> codes ----------------------------------------------------------------------

def signal_to_int(value, bits: int, arg: str = "signal") -> int:
    """The raw `bits`-bit pattern of a simulator value.

    Accepts Python / numpy ints (a negative int is taken as two's complement), cocotb 2.x LogicArray
    / handle values (anything with `to_unsigned()` or `is_resolvable`), and binary strings
    ('0101'); rejects X/Z bits and values wider than `bits`.
    """
    v = value
    if not isinstance(v, (int, np.integer, str)) and not hasattr(v, "is_resolvable") and hasattr(v, "value"):
        v = v.value                                   # a cocotb handle: its current value
    if hasattr(v, "is_resolvable"):
        if not v.is_resolvable:
            raise bad(arg, "a resolvable value (no X/Z bits)", str(v))
        if len(v) != bits:
            raise bad(arg, f"a {bits}-bit signal", f"{len(v)} bits")
        return int(v.to_unsigned())
    if isinstance(v, str):
        s = v.strip().replace("_", "")
        if len(s) != bits or any(ch not in "01" for ch in s):
            raise bad(arg, f"a {bits}-character binary string without X/Z", repr(v))
        return int(s, 2)
    if isinstance(v, (bool, np.bool_)):
        v = int(v)
    if not isinstance(v, (int, np.integer)):
        raise bad(arg, "an int, a binary string or a cocotb LogicArray", type(value).__name__)
    v = int(v)
    if not -(1 << (bits - 1)) <= v < (1 << bits):
        raise bad(arg, f"a value that fits {bits} bits", v)
    return v & ((1 << bits) - 1)


def code_to_signed(code: int, bits: int) -> int:
    """Two's complement value of a `bits`-bit pattern."""
    return code - (1 << bits) if code >> (bits - 1) & 1 else code


# ---- the model -----------------------------------------------------------------------------------

class Model:
    """Cycle-level model of one MAC unit: `reset()`, then `step(...)` once per clock edge.

    `step` returns the code the DUT's `acc` output must show after that edge (the unit's finish()
    of its accumulator: the odd-phase exponent trick included). `state` is the accumulator register.
    """

    def __init__(self, unit, **overrides):
        if isinstance(unit, str) or overrides:
            unit = get_unit(unit, **overrides)
        if not isinstance(unit, Unit):
            raise bad("unit", "a Unit or a unit preset name", type(unit).__name__)
        self.unit = unit
        self.layout = Layout(unit)
        self.kind = self.layout.kind
        self.lanes = self.layout.field("a").lanes
        self.reset()

    # -- conversions --
    def to_code(self, name: str, value):
        """Codes of a signal value for field `name` (a list of lane codes for a multi-lane bus)."""
        x = self.layout.field(name)
        if x.lanes == 1 and isinstance(value, (list, tuple, np.ndarray)) and len(value) == 1:
            value = value[0]
        if x.lanes > 1 and isinstance(value, (list, tuple, np.ndarray)):
            if len(value) != x.lanes:
                raise bad(name, f"{x.lanes} lane values", len(value))
            return [signal_to_int(v, x.lane_bits, f"{name}[{i}]") for i, v in enumerate(value)]
        raw = signal_to_int(value, x.bits, name)
        return self.layout.split_lanes(x, raw)

    def to_signal(self, name: str, code, signed: bool = False) -> int:
        """The int to drive on port `name`: the raw pattern, or its two's complement value if `signed`."""
        x = self.layout.field(name)
        raw = self.layout.join_lanes(x, code)
        return code_to_signed(raw, x.bits) if signed and x.signed and x.lanes == 1 else raw

    def value(self, name: str, code):
        """The numeric value of a code of field `name` (signed ints decoded; float formats decoded)."""
        from ..codec import decode

        x = self.layout.field(name)
        fmt = {"c": self.unit.acc_fmt, "acc": self.unit.acc_fmt, "a": self.unit.a_fmt, "b": self.unit.b_fmt,
               "out": self.unit.out_fmt}.get(name)
        lanes = code if isinstance(code, list) else [code]
        if fmt is None:
            vals = [int(c) for c in lanes]
        else:
            vals = [float(v) for v in decode(np.array(lanes, dtype=np.uint64).astype(fmt.dtype), fmt)]
            if isinstance(fmt, IntFormat):
                vals = [int(v) for v in vals]
        return vals if x.lanes > 1 else vals[0]

    def check_ports(self, widths: dict):
        """Raise NumsimError unless every port the layout needs is present with the layout's width."""
        for x in self.layout.fields:
            if x.name not in widths and x.optional:
                continue
            if x.name not in widths:
                raise bad(x.name, f"a port of {x.bits} bits", "no such port")
            if int(widths[x.name]) != x.bits:
                raise bad(x.name, f"a {x.bits}-bit port for unit {self.unit.name}", f"{widths[x.name]} bits")

    def bind(self, dut, names: dict | None = None):
        """Check a cocotb DUT's port widths against the unit; returns {field: handle}."""
        names = names or {}
        handles = {}
        for x in self.layout.fields:
            port = names.get(x.name, x.name)
            h = getattr(dut, port, None)
            if h is None and x.optional:
                continue
            if h is None:
                raise bad(port, f"a {x.bits}-bit port of the DUT", "no such port")
            handles[x.name] = h
        self.check_ports({k: len(h) for k, h in handles.items()})
        return handles

    # -- the register --
    # `state` is the accumulator as a dot over the terms since the last load/reset would end here.
    # Sequential order keeps it in one register (acc = acc + term). Chunked and pairwise orders
    # round differently: the model keeps `_base` (the accumulator after the last complete chunk, or
    # the loaded c for pairwise) and `_terms` (the terms since), and computes state with unit.dot, so
    # every cycle's output equals unit.dot over the terms so far, bit for bit.
    @property
    def state(self) -> int:
        return self._state

    @state.setter
    def state(self, code):
        self._state = self._base = int(code)
        self._terms = []
        self.flags = 0

    @property
    def order(self) -> str:
        """The unit's reduction order as the model honours it ('sequential' for units without one)."""
        if self.kind not in ("int", "float"):
            return "sequential"               # sample-shift (per_sample) and generic units step in sequence
        return getattr(self.unit, "order", "sequential")

    def reset(self):
        init = getattr(self.unit, "initial_state", None)
        self.state = int(init()) if init is not None else 0      # code 0: +0 / integer 0
        return self.output()

    def output(self):
        """The acc output code of the current register."""
        fin = getattr(self.unit, "finish", None)
        return int(fin(self.state)) if fin is not None else int(self.state)

    def out_code(self):
        """The output stage's code (units with an output stage)."""
        stage = getattr(self.unit, "output_stage", None)
        if stage is None:
            raise bad("out", "a unit with an output stage", self.unit.name)
        return int(stage.apply(np.array([self.state], dtype=np.uint32))[0])

    def expected(self) -> dict:
        out = {"acc": self.output()}
        if "out" in self.layout.by_name:
            out["out"] = self.out_code()
        if "flags" in self.layout.by_name:
            out["flags"] = self.flags
        return out

    def next_state(self, a, b, valid=1, load=0, c=0, shift=0, state=None):
        """The register after one edge, without changing the model (raises NumsimError where the
        unit's overflow policy is 'error'). `state`: start from this accumulator code instead."""
        return self._next(a, b, valid, load, c, shift, state)[0]

    def next_flags(self, a, b, valid=1, load=0, c=0, shift=0, state=None):
        """(register, flags) after one edge, without changing the model."""
        return tuple(self._next(a, b, valid, load, c, shift, state)[i] for i in (0, 3))

    def advance(self, a, b, valid=1, load=0, c=0, shift=0) -> int:
        """One edge (no reset): updates the model and returns the new register; on NumsimError the
        model is left unchanged."""
        self._state, self._base, self._terms, self.flags = self._next(a, b, valid, load, c, shift)
        return self._state

    def _next(self, a, b, valid, load, c, shift, state=None):
        """(state, base, terms, flags) after one edge. flags: the IEEE flags of the edge's register
        updates (numsim.fpops bits; 0 without a valid term). Sequential order: the step's flags.
        Chunked and pairwise: the OR of the flags of the new term's update and of every add after it
        in unit.dot's trace over the terms since the load (the adds that recombine the output)."""
        if state is not None:
            base, terms = int(state), []
        else:
            base, terms = self._base, self._terms
        cur = base if state is not None else self._state
        if load:
            cur = base = int(self._in("c", c))
            terms = []
        if not valid:
            return cur, base, terms, 0
        a = self._in("a", a)
        b = self._in("b", b)
        s = self._in(self.layout.shift_name, shift)
        u = self.unit
        if self.order == "sequential":
            fl = 0
            if self.kind == "float":
                nxt, fl = u.step_flags(cur, a, b)
            elif self.kind == "generic":
                nxt = int(u.step(cur, a, b))
            elif self.kind == "int":
                nxt, fl = u.step_flags(cur, a, b, align_shift=s)
            else:
                nxt = int(u.step(cur, a, b, sample_shift=s))
            return int(nxt), int(nxt), [], int(fl)
        terms = terms + [(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b], s)]
        av = np.array([x for t in terms for x in t[0]], dtype=np.int64)
        bv = np.array([x for t in terms for x in t[1]], dtype=np.int64)
        ctx = {}
        if self.layout.shift_name == "align_shift":
            ctx[u._ctx_key] = np.array([t[2] for t in terms], dtype=np.int32)
        # the last trace entry is the accumulator before finish (the odd-phase trick comes after)
        d = u.dot(av, bv, c=base, trace=True, **ctx)
        nxt = int(d.trace[-1])
        fl = 0
        for x in d.trace_flags[len(terms) - 1:]:   # the new term's update, then the adds after it
            fl |= int(x)
        if self.order == "chunked" and len(terms) == u.chunk:
            return nxt, nxt, [], fl           # a complete chunk: folded into the accumulator
        return nxt, base, terms, fl

    def step(self, a, b, valid=1, *, load=0, c=0, shift=0, rst=0):
        """One clock edge; returns the acc output code after it. a, b: codes or signal values
        (lists of lanes, or packed buses for multi-lane units)."""
        if rst:
            return self.reset()
        self.advance(a, b, valid, load, c, shift)
        return self.output()

    def _in(self, name, v):
        if name is None:
            if v:
                raise bad("shift", f"0 (unit {self.unit.name} has no shift port)", repr(v))
            return 0
        return self.to_code(name, v)
