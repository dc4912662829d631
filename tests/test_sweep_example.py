"""The example sweep (examples/sweep_int4_fp4_accumulator.toml): it describes the seed-003 datapath, and
its headline result holds on a reduced grid."""
from pathlib import Path

import numpy as np
import pytest

from numsim.sweep import load_spec, plan_sweep, run_sweep
from numsim.sweep.quantize import quantize_operand
from numsim.units import get_unit

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sweep_int4_fp4_accumulator.toml"

pytest.importorskip("sklearn", reason="the digits workload needs scikit-learn")


@pytest.fixture(scope="module")
def plan():
    return plan_sweep(load_spec(EXAMPLE))


def test_example_plans(plan):
    assert len(plan.variants) == 11 * 4
    assert {g.name: g.shape for g in plan.workloads.gemms} == {
        "fc1.weight_grad": (64, 449, 128), "fc2.weight_grad": (128, 449, 64), "fc2.input_grad": (128, 64, 449),
        "fc3.weight_grad": (64, 449, 10), "fc3.input_grad": (64, 10, 449)}
    assert plan.param_keys == ["acc_fmt.man_bits", "chunk"]
    u = plan.units[[v.params for v in plan.variants].index({"acc_fmt.man_bits": 10, "chunk": 128})]
    assert (u.acc_fmt.exp_bits, u.acc_fmt.man_bits, u.acc_fmt.bias) == (5, 10, 15)


@pytest.mark.parametrize("order, chunk", [("sequential", 128), ("chunked", 16)])
def test_example_unit_at_fp16_is_the_seed_preset(plan, order, chunk):
    # With man_bits = 10 the swept unit must give the int4_fp4r4_fp16 preset's bits.
    g = plan.workloads.gemms[0]
    i = [v.params for v in plan.variants].index({"acc_fmt.man_bits": 10, "chunk": chunk})
    swept = get_unit(plan.units[i], order=order)
    preset = get_unit("int4_fp4r4_fp16", order=order, chunk=chunk)
    qa, _ = quantize_operand(g.a, "int4", plan.quants[i]["a"], "a", plan.seed, 0)
    qb, _ = quantize_operand(g.b, "fp4r4", plan.quants[i]["b"], "b", plan.seed, 0)
    r1 = swept.gemm_codes(qa.codes, qb.codes, nthreads=1)
    r2 = preset.gemm_codes(qa.codes, qb.codes, nthreads=1)
    assert np.array_equal(r1.codes, r2.codes)


def test_example_claim_on_reduced_grid(tmp_path):
    spec = load_spec(EXAMPLE)
    spec["grid"] = {"acc_fmt": {"man_bits": [6, 10]}, "chunk": [16, 128]}
    res = run_sweep(spec, tmp_path, scheduler="sync")
    sq = {(r["acc_fmt.man_bits"], r["chunk"]): r for r in res.rows if r["gemm"] == "all"}
    # wider accumulators and 64-product chunks both help ...
    assert sq[10, 128]["sqnr_db"] > sq[6, 128]["sqnr_db"] + 15
    assert sq[6, 16]["sqnr_db"] > sq[6, 128]["sqnr_db"]
    # ... and an FP16 accumulator's error is far (> 30 dB) below the operands' quantization error
    for chunk in (16, 128):
        assert sq[10, chunk]["sqnr_db"] > sq[10, chunk]["f32_sqnr_db"] + 30
    assert all(r["overflows"] == 0 and r["saturated"] == 0 for r in res.rows)


def test_digits_gemms_come_from_numsim_workloads():
    # the sweep's digits GEMMs are numsim.workloads' arrays, arranged as documented in digits_gemms
    from numsim import workloads
    from numsim.sweep import workloads as sweep

    layers, source = sweep.digits_layers(hidden=(32,), train_steps=15, batch=40, seed=2)
    recs = workloads.digits_mlp_workload(batch_size=40, hidden=(32,), train_steps=15, seed=2)
    assert source == "numsim.workloads" and len(layers) == len(recs) == 2
    for (name, x, w, g), r in zip(layers, recs):
        assert name == r.name and np.array_equal(x, r.x) and np.array_equal(w, r.weight) and np.array_equal(g, r.grad_out)
    gemms = dict((n, (a, b)) for n, a, b in sweep.digits_gemms("all", hidden=(32,), train_steps=15, batch=40, seed=2))
    assert np.array_equal(gemms["fc1.weight_grad"][0], recs[0].x.T) and np.array_equal(gemms["fc2.input_grad"][1],
                                                                                       recs[1].grad_out.T)
