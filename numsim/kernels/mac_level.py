"""The MAC-level kernels: every step as the unit defines it (csrc/units.c, csrc/hw.c scalar).
They define the bits; every other kernel is proved (and tested) equal to them."""
from . import Kernel, register


def _always(unit, problem):
    return None


def _run(unit, problem):
    return unit.mac_level_gemm(problem)


for _family, _where in (("int_mac", "csrc/units.c ns_unit_gemm"), ("sample_shift", "csrc/units.c ns_unit_gemm"),
                        ("float_mac", "csrc/units.c ns_unit_gemm"), ("fused_adder", "csrc/hw.c scalar kernel"),
                        ("int_mma", "csrc/hw.c ns_imma_gemm"),
                        ("matrix_core", "numsim/units/matrix_core.py, exact int64 lanes"),
                        ("pair_fma", "numsim/units/cpu_dot.py, float64 TwoSum")):
    register(Kernel(name=f"{_family}.mac_level", level="portable",
                    proof=f"the definition: every MAC step of the unit in its reduction order ({_where}); "
                          "tests/test_units_*.py, test_hardware.py and the oracles check it",
                    domain=_always, run=_run, flags=_family in ("int_mac", "sample_shift", "float_mac")))
