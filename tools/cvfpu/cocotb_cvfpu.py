"""cocotb testbench: cvfpu (FPnew) against numsim, every vector driven through cvfpu_numsim_top.

Vectors come from cvfpu_golden.make_vectors(NUMSIM_CVFPU_COUNT, NUMSIM_CVFPU_SEED); the DUT is
combinational, so each vector is one write of in_bus, a 1 ns wait and one read of out_bus. The raw
outputs are saved to NUMSIM_CVFPU_OUT (.npz); the comparison with numsim and the verdicts happen in
cvfpu_golden / run.py, outside the simulator.
"""
import os

import cocotb
import numpy as np
from cocotb.triggers import Timer

import cvfpu_golden as golden


@cocotb.test()
async def cvfpu_against_numsim(dut):
    n = int(os.environ.get("NUMSIM_CVFPU_COUNT", "1000"))
    seed = int(os.environ.get("NUMSIM_CVFPU_SEED", "0"))
    out = os.environ["NUMSIM_CVFPU_OUT"]
    vec = golden.make_vectors(n, seed)
    words = golden.pack_inputs(vec)
    ops = vec["op"].tolist()
    res = np.zeros(len(words), dtype=np.uint64)
    flags = np.zeros(len(words), dtype=np.uint64)
    bus_in, bus_out = dut.in_bus, dut.out_bus
    for i, w in enumerate(words):
        bus_in.value = w
        await Timer(1, unit="ns")
        word = int(bus_out.value.to_unsigned())
        res[i], flags[i] = golden.unpack_output(word, ops[i])
    np.savez(out, result=res, flags=flags, count=n, seed=seed)
    dut._log.info("numsim: drove %d cvfpu vectors", len(words))
