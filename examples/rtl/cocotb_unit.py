"""cocotb testbench of any MAC against numsim: the unit from NUMSIM_UNIT_FILE (a TOML unit file) or
NUMSIM_UNIT (a preset name, with NUMSIM_UNIT_OVERRIDES as JSON). Used by `run.py cocotb --unit-file`."""
import json
import os

import cocotb

from mac_cocotb import check_every_cycle
from numsim.rtl.unitfile import read_unit_file
from numsim.units import get_unit


@cocotb.test()
async def unit_matches_numsim(dut):
    path = os.environ.get("NUMSIM_UNIT_FILE")
    if path:
        unit = read_unit_file(path)[0]
    else:
        unit = get_unit(os.environ["NUMSIM_UNIT"], **json.loads(os.environ.get("NUMSIM_UNIT_OVERRIDES") or "{}"))
    await check_every_cycle(dut, unit)
