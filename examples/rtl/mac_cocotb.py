"""The cocotb 2.x driver shared by the example testbenches: every cycle checked against numsim.rtl.Model
(acc, and the IEEE flags when the DUT has a `flags` port).

Stimulus: numsim's corner vectors (format extremes, overflow by one, exponent-trick edges, ties) and
`cycles` random accumulation cycles. Expected values are computed live by the model, cycle by cycle,
from what was driven; signal values go through the model's converters (signedness handled there).
"""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from numsim.rtl import Model, generate
from numsim.units import get_unit


def unit_from_env(preset, default_overrides):
    """The unit under test: NUMSIM_UNIT_OVERRIDES (JSON) replaces the testbench's default overrides."""
    over = json.loads(os.environ.get("NUMSIM_UNIT_OVERRIDES", "null") or "null")
    return get_unit(preset, **(default_overrides if over is None else over))


async def check_every_cycle(dut, unit):
    cycles = int(os.environ.get("NUMSIM_CYCLES", "3000"))
    seed = int(os.environ.get("NUMSIM_SEED", "1"))
    model = Model(unit)
    ports = model.bind(dut)                       # NumsimError if a port is missing or of the wrong width
    stim = generate(unit, count=cycles, seed=seed, kinds=("corner", "random")).stimulus()
    inputs = [f.name for f in model.layout.fields if f.role == "in"]
    shift = model.layout.shift_name
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    mismatches, n_bad, checked = [], 0, 0
    for i, s in enumerate(stim):
        for name in inputs:                       # drive on the falling edge
            ports[name].value = model.to_signal(name, s[name], signed=True)
        expected = model.step(s["a"], s["b"], s["valid"], load=s["load"], c=s["c"],
                              shift=s[shift] if shift else 0, rst=s["rst"])
        await FallingEdge(dut.clk)                # the rising edge in between clocked the register
        got = model.to_code("acc", ports["acc"])          # the handle: its value, X/Z refused
        checked += 1
        bad = [] if got == expected else [f"acc={got:#x} expected {expected:#x}"]
        if "flags" in ports:                      # a DUT with a flags port: the cycle's IEEE flags too
            got_flags = model.to_code("flags", ports["flags"])
            if got_flags != model.flags:
                bad.append(f"flags={got_flags:#04x} expected {model.flags:#04x}")
        if bad:
            n_bad += 1
            if len(mismatches) < 5:
                mismatches.append(f"cycle {i} {s}: " + ", ".join(bad))
    dut._log.info("numsim: checked %d cycles, %d mismatches", checked, n_bad)
    assert n_bad == 0, f"MISMATCH: {n_bad} of {checked} cycles differ from numsim; first: " + "; ".join(mismatches)
