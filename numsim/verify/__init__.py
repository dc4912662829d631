"""Verification as a library: the arithmetic against independent oracles and against recorded hardware.

- oracles     : numpy / MPFR oracles of the FP16 adder and the float MAC steps, exact value tables
- datapath    : the kernels under test as vector calls (the one place that calls the C library directly)
- exhaustive  : the FP16 adder on all 2^32 operand pairs (resumable, state as data), stratified and MPFR samples
- units       : every product and accumulate step of the small-operand-space units
- recordings  : replay recorded tensor-core / cuBLAS outputs through a unit, bit for bit

Every function returns results as plain data and raises NumsimError on bad input; the `numsim verify`
and `numsim verify-hardware` commands only parse arguments and print.
"""
from .exhaustive import (load_state, mpfr_sample, new_state, run_exhaustive, sample_check, save_state,
                         stratified_pairs, sweep_chunk)
from .oracles import MODES, MPFR_MODES, mpfr_f16_add, numpy_f16_add, numpy_f16_mac_step, value_table
from .recordings import FAMILY_NAMES, family_name, replay_recording
from .units import unit_checks

__all__ = ["MODES", "MPFR_MODES", "numpy_f16_add", "mpfr_f16_add", "numpy_f16_mac_step", "value_table",
           "stratified_pairs", "sample_check", "sweep_chunk", "run_exhaustive", "new_state", "load_state",
           "save_state", "mpfr_sample", "unit_checks", "replay_recording", "family_name", "FAMILY_NAMES"]
