"""Design-space sweeps: metrics on hand-computed cases, determinism across schedulers, resume, bad input."""
import csv
import json
import math
import socket

import numpy as np
import pytest

from numsim.errors import NumsimError
from numsim.sweep import deterministic_columns, load_spec, plan_sweep, run_sweep
from numsim.sweep.metrics import error_sums, metrics_from_sums, pool_sums


def _spec(**over):
    spec = {
        "sweep": {"name": "small", "unit": "fp8_fp16", "seed": 3},
        "fixed": {"a_fmt": "int4", "b_fmt": "fp4r4", "k_step": 4, "order": "chunked"},
        "grid": {"acc_fmt": {"man_bits": [5, 8, 10]}, "chunk": [8, 128]},
        # max by name: these tables were built for it (the default is now "auto")
        "quant": {"method": "max", "b": {"rounding": "stochastic"}},
        "workload": [{"kind": "random", "name": "gauss", "m": 8, "k": 300, "n": 6},
                     {"kind": "random", "name": "heavy", "dist": "student_t", "m": 5, "k": 200, "n": 7}],
        "report": {"x": "acc_fmt.man_bits", "series": "chunk"},
    }
    spec.update(over)
    return spec


def _rows(res):
    return deterministic_columns(res.rows)


# ---- metrics on hand-computed cases -------------------------------------------------------------

def test_metrics_hand_computed():
    out = np.array([1.0, 2.0, 3.0, 5.0])
    ref = np.array([1.0, 2.0, 4.0, 4.0])
    m = metrics_from_sums(error_sums(out, ref))
    assert m["bias"] == 0.0
    assert m["rms_err"] == pytest.approx(math.sqrt(2 / 4))
    assert m["sqnr_db"] == pytest.approx(10 * math.log10(37 / 2))
    assert m["max_abs_err"] == 1.0
    assert m["max_rel_err"] == pytest.approx(0.25)
    assert m["rms_rel_err"] == pytest.approx(math.sqrt(2 / 4) / math.sqrt(37 / 4))
    # pooling two halves gives the metrics of the whole
    pooled = metrics_from_sums(pool_sums([error_sums(out[:2], ref[:2]), error_sums(out[2:], ref[2:])]))
    assert pooled == pytest.approx(m)
    # an error where the reference is exactly zero has no finite relative error
    assert metrics_from_sums(error_sums([0.5], [0.0]))["max_rel_err"] == math.inf
    exact = metrics_from_sums(error_sums(ref, ref))
    assert exact["sqnr_db"] == math.inf and exact["rms_err"] == 0 and exact["bias"] == 0


def test_exact_accumulation_has_zero_error(tmp_path):
    # INT4 x INT4 into INT32 is exact, with per-tensor, per-channel and per-k power-of-two
    # (alignment-shift) scales: zero error against the float64 reference of the quantized operands,
    # while the error against the unquantized float32 product (quantization) is not zero.
    spec = {"sweep": {"name": "exact", "unit": "int4_int32"},
            "grid": {"quant": {"a": {"granularity": ["tensor", "channel", "reduction_pow2"]}}},
            "workload": [{"kind": "random", "name": "lap", "dist": "laplace", "m": 9, "k": 70, "n": 5}]}
    res = run_sweep(spec, tmp_path, scheduler="sync")
    assert len(res.rows) == 3
    for r in res.rows:
        assert r["sqnr_db"] == math.inf and r["bias"] == 0 and r["max_abs_err"] == 0 and r["rms_rel_err"] == 0
        assert r["overflows"] == 0 and r["saturated"] == 0
        assert 0 < r["f32_rms_rel_err"] < 0.5
        assert r["mmac_per_s"] > 0


def test_sample_shift_unit_exact(tmp_path):
    spec = {"sweep": {"name": "psq", "unit": "int4_int32_sample_shift"},
            "fixed": {"quant": {"a": {"granularity": "sample_shift"}}},
            "grid": {"shift_direction": ["left"]},
            "workload": [{"kind": "random", "name": "ln", "dist": "lognormal", "m": 6, "k": 40, "n": 4}]}
    res = run_sweep(spec, tmp_path, scheduler="sync")
    (r,) = res.rows
    assert r["sqnr_db"] == math.inf and r["max_abs_err"] == 0
    assert r["f32_sqnr_db"] > 5      # the shifts keep small samples: quantization error stays moderate


def test_truncation_bias_sign(tmp_path):
    # 3000 products 1 x 1 into FP16, sequentially: from 2048 on, the FP16 ulp is 2. Toward zero every
    # later +1 is lost (result 2048, bias -952); toward +inf every +1 adds 2 (2048 + 2 * 952, bias +952).
    # In chunks of 64 every partial sum is a multiple of 8 below 4096: exact.
    np.savez(tmp_path / "ones.npz", a=np.ones((2, 3000)), b=np.ones((3000, 3)))
    spec = {"sweep": {"name": "trunc", "unit": "fp8_fp16"},
            "fixed": {"chunk": 64, "quant": {"method": "fixed", "scale": 1.0}},
            "grid": {"acc_rounding": ["toward_zero", "toward_pos", "nearest_even"],
                     "order": ["sequential", "chunked"]},
            "workload": [{"kind": "npz", "path": "ones.npz"}], "_base_dir": str(tmp_path)}
    res = run_sweep(spec, tmp_path / "out", scheduler="sync")
    got = {(r["acc_rounding"], r["order"]): r for r in res.rows}
    assert got["toward_zero", "sequential"]["bias"] == -952.0
    assert got["toward_pos", "sequential"]["bias"] == 952.0
    assert got["toward_zero", "sequential"]["sqnr_db"] == pytest.approx(20 * math.log10(3000 / 952))
    assert got["nearest_even", "sequential"]["bias"] == -952.0   # ties to even: 2049 -> 2048
    for rnd in ("toward_zero", "toward_pos", "nearest_even"):
        assert got[rnd, "chunked"]["max_abs_err"] == 0
    assert all(r["a_clipped"] == 0 and r["b_clipped"] == 0 for r in res.rows)


# ---- determinism across schedulers, resume, failures ----------------------------------------------

def test_local_and_distributed_give_identical_tables(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the Dask distributed scheduler is optional")
    pytest.importorskip("dask", reason="Dask is optional")
    spec = _spec()
    local = run_sweep(spec, tmp_path / "local", workers=2)
    sync = run_sweep(spec, tmp_path / "sync", scheduler="sync")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        dist = run_sweep(spec, tmp_path / "dist", scheduler=cl.scheduler_address)
    assert local.ran == dist.ran == 6 and not local.failures and not dist.failures
    assert len(local.rows) == 6 * 3          # two GEMMs + the pooled row per variant
    assert _rows(local) == _rows(dist) == _rows(sync)
    # the accumulator width matters, so the table is not trivially constant
    sq = {(r["acc_fmt.man_bits"], r["chunk"]): r["sqnr_db"] for r in local.rows if r["gemm"] == "all"}
    assert sq[10, 8] > sq[8, 8] > sq[5, 8]
    with open(tmp_path / "local" / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 18


def test_resume_after_interrupt(tmp_path):
    spec = _spec()
    seen = []

    def stop_after_two(rec):
        seen.append(rec["variant"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "r", workers=1, on_result=stop_after_two)
    saved = sorted((tmp_path / "r" / "variants").glob("*.json"))
    assert len(saved) == 2
    # the partial table is written even when interrupted
    with open(tmp_path / "r" / "results.csv") as f:
        assert sorted(int(r["variant"]) for r in csv.DictReader(f) if r["gemm"] == "all") == sorted(seen)
    again = []
    res = run_sweep(spec, tmp_path / "r", workers=2, on_result=lambda rec: again.append(rec["variant"]))
    assert res.reused == 2 and res.ran == 4
    assert sorted(again + seen) == list(range(6)) and not set(again) & set(seen)
    full = run_sweep(spec, tmp_path / "full", scheduler="sync")
    assert _rows(res) == _rows(full)
    # a third run computes nothing
    assert run_sweep(spec, tmp_path / "r", scheduler="sync").ran == 0


def test_limit_then_resume_via_cli(tmp_path):
    from numsim.cli import main

    p = tmp_path / "s.toml"
    p.write_text("""
[sweep]
name = "cli"
unit = "int4_int32"
[fixed]
widen_bits = 8
[grid]
acc_bits = [12, 16, 32]
acc_overflow = ["wrap", "saturate"]
[[workload]]
kind = "random"
dist = "half_normal"
m = 4
k = 1000
n = 3
""")
    out = tmp_path / "out"
    assert main(["sweep", str(p), "--out", str(out), "--limit", "2", "--no-progress"]) == 0
    assert len(list((out / "variants").glob("*.json"))) == 2
    assert main(["sweep", str(p), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["variant"]) for r in rows] == list(range(6))
    by = {(r["acc_bits"], r["acc_overflow"]): r for r in rows}
    # 1000 non-negative products overflow a 12-bit accumulator, never an INT32 one
    assert int(by["12", "wrap"]["overflows"]) > 0 and int(by["32", "wrap"]["overflows"]) == 0
    assert float(by["32", "wrap"]["sqnr_db"]) == math.inf
    assert int(by["12", "saturate"]["saturated"]) > 0
    summary = (out / "summary.md").read_text()
    assert "| 5 | 32 | saturate |" in summary
    try:
        import pyarrow.parquet as pq
    except ImportError:      # Parquet is written only with pyarrow
        assert not (out / "results.parquet").exists()
    else:
        t = pq.read_table(out / "results.parquet").to_pylist()
        assert [r["variant"] for r in t] == list(range(6))
        assert [r["overflows"] for r in t] == [int(r["overflows"]) for r in rows]


def test_failed_variant_keeps_finished_results(tmp_path, capsys):
    from numsim.cli import main

    # 400 x 400 = 160000 overflows FP16: to_inf gives inf outputs, 'error' makes that variant fail.
    np.savez(tmp_path / "big.npz", a=np.full((2, 4), 400.0), b=np.full((4, 2), 400.0))
    p = tmp_path / "s.toml"
    p.write_text("""
[sweep]
name = "fail"
unit = "fp8_fp16"
[fixed.quant]
method = "fixed"
[grid]
acc_overflow = ["to_inf", "error", "saturate"]
[[workload]]
kind = "npz"
path = "big.npz"
""")
    out = tmp_path / "out"
    assert main(["sweep", str(p), "--out", str(out), "--workers", "2", "--no-progress"]) == 1
    assert "variant 1 failed" in capsys.readouterr().err
    res_rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(int(r["variant"]) for r in res_rows) == [0, 2]
    inf_row = next(r for r in res_rows if r["variant"] == "0")
    assert int(inf_row["saturated"]) == 4 and float(inf_row["sqnr_db"]) == -math.inf
    assert int(next(r for r in res_rows if r["variant"] == "2")["saturated"]) == 4
    assert json.loads((out / "failures.json").read_text())[0]["variant"] == 1
    assert "Failed variants" in (out / "summary.md").read_text()
    assert len(list((out / "variants").glob("*.json"))) == 2


# ---- bad input: NumsimError before any work -------------------------------------------------------

@pytest.mark.parametrize("change, match", [
    (lambda s: s["grid"].update(chunkk=[1]), "unknown parameter 'chunkk'"),
    (lambda s: s["grid"].update(chunk=[]), "non-empty list"),
    (lambda s: s.pop("grid"), "nothing to sweep"),
    (lambda s: s["grid"].update({"acc_fmt": {"mantissa": [3]}}), "unknown parameter acc_fmt.mantissa"),
    (lambda s: s["grid"].update(order=["zigzag"]), "order"),
    (lambda s: s.update(quant={"method": "magic"}), "quant.a.method"),
    (lambda s: s["sweep"].update(unit="no_such_unit"), "unknown unit preset"),
    (lambda s: s.update(workload=[]), "workload"),
    (lambda s: s.update(workload=[{"kind": "random", "m": 2, "k": 3, "n": 4, "dist": "cauchyish"}]), "a_dist"),
    (lambda s: s.update(quant={"a": {"granularity": "sample_shift"}}), "sample_shift"),
    (lambda s: s.update(bogus={}), "unknown section"),
    (lambda s: s["grid"].update({"quant": {"b": {"seed": [-1]}}}), "quant.b.seed"),
    (lambda s: s["workload"][0].update(m=0), "workload\\[0\\].m"),
])
def test_bad_spec_raises_before_work(tmp_path, change, match):
    spec = _spec()
    change(spec)
    with pytest.raises(NumsimError, match=match):
        run_sweep(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_code_operands_must_match_unit_formats(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "codes.npz", a=rng.integers(0, 256, (3, 5)).astype(np.uint8),
             b=rng.integers(0, 256, (5, 2)).astype(np.uint8))
    spec = {"sweep": {"unit": "int4_int32"}, "grid": {"acc_bits": [32]}, "_base_dir": str(tmp_path),
            "workload": [{"kind": "npz", "path": "codes.npz", "a_fmt": "int8", "b_fmt": "int8"}]}
    with pytest.raises(NumsimError, match="operand a is given as int8 codes but variant 0's unit takes int4"):
        plan_sweep(spec)
    # the same codes with a unit that takes int8 operands run, and exactly
    spec["fixed"] = {"a_fmt": "int8", "b_fmt": "int8"}
    res = run_sweep(spec, tmp_path / "out", scheduler="sync")
    assert res.rows[0]["max_abs_err"] == 0
    # mismatched reduction lengths in .npy files
    np.save(tmp_path / "a.npy", np.ones((3, 5)))
    np.save(tmp_path / "b.npy", np.ones((4, 2)))
    spec = {"sweep": {"unit": "int4_int32"}, "grid": {"acc_bits": [32]}, "_base_dir": str(tmp_path),
            "workload": [{"kind": "npy", "a": "a.npy", "b": "b.npy"}]}
    with pytest.raises(NumsimError, match="reduction lengths differ"):
        plan_sweep(spec)
    # real-valued .npy operands that do fit (b stored as (N, K), transposed on load)
    np.save(tmp_path / "b.npy", np.arange(10.0).reshape(2, 5) - 4)
    spec["workload"][0]["transpose_b"] = True
    res = run_sweep(spec, tmp_path / "out2", scheduler="sync")
    (r,) = res.rows
    assert (r["M"], r["K"], r["N"]) == (3, 5, 2) and r["max_abs_err"] == 0 and r["f32_sqnr_db"] > 20


def test_unreachable_scheduler(tmp_path):
    pytest.importorskip("distributed", reason="the Dask distributed scheduler is optional")
    with socket.socket() as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NumsimError, match="scheduler: could not connect"):
        run_sweep(_spec(), tmp_path / "out", scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=1)
    assert not (tmp_path / "out").exists()
    with pytest.raises(NumsimError, match="scheduler"):
        run_sweep(_spec(), tmp_path / "out", scheduler="not-an-address")


def test_changed_sweep_does_not_reuse_stale_results(tmp_path):
    spec = _spec(grid={"chunk": [8, 64]}, report={})
    run_sweep(spec, tmp_path, scheduler="sync")
    spec2 = _spec(grid={"chunk": [8, 64]}, report={})
    spec2["workload"][0]["k"] = 301
    res = run_sweep(spec2, tmp_path, scheduler="sync", progress=True)
    assert res.reused == 0 and res.ran == 2
    assert run_sweep(spec, tmp_path, scheduler="sync").reused == 2


def test_digits_workload_and_toml(tmp_path):
    pytest.importorskip("sklearn", reason="the digits workload needs scikit-learn")
    p = tmp_path / "d.toml"
    p.write_text("""
[sweep]
name = "digits"
unit = "int4_fp4r4_fp16"
[grid]
order = ["sequential", "chunked"]
[[workload]]
kind = "digits"
hidden = 64
train_steps = 20
batch = 300
gemms = ["fc2.weight_grad", "fc2.input_grad"]
""")
    plan = plan_sweep(load_spec(p))
    shapes = {g.name: g.shape for g in plan.workloads.gemms}
    assert shapes == {"fc2.weight_grad": (64, 300, 10), "fc2.input_grad": (64, 10, 300)}
    res = run_sweep(p, tmp_path / "out", scheduler="sync")
    assert [r["gemm"] for r in res.rows] == ["fc2.weight_grad", "fc2.input_grad", "all"] * 2
    wg = {r["order"]: r for r in res.rows if r["gemm"] == "fc2.weight_grad"}
    # a 300-term FP16 accumulation loses bits (finite SQNR), chunking loses fewer
    assert all(30 < r["sqnr_db"] < math.inf for r in wg.values())
    assert wg["chunked"]["rms_err"] < wg["sequential"]["rms_err"]


def test_quantizer_bits_and_method_as_variants(tmp_path):
    # [[variants]] x [grid]: operand width (the quantizer's bits) and the quantizer's method.
    spec = {"sweep": {"name": "q", "unit": "int4_int32"},
            "variants": [{"a_fmt": "int4", "b_fmt": "int4"}, {"a_fmt": "int8", "b_fmt": "int8"}],
            "grid": {"quant": {"method": ["max", "percentile"]}},
            "quant": {"percentile": 99.0},
            "workload": [{"kind": "random", "dist": "laplace", "m": 16, "k": 64, "n": 16}]}
    res = run_sweep(spec, tmp_path, scheduler="sync")
    r = {(row["a_fmt"], row["quant.method"]): row for row in res.rows}
    assert len(r) == 4
    assert all(row["max_abs_err"] == 0 for row in res.rows)           # INT32 accumulation is exact
    # 4 more bits: about 24 dB less quantization noise
    assert r["int8", "max"]["f32_sqnr_db"] > r["int4", "max"]["f32_sqnr_db"] + 15
    # clipping at the 99th percentile clips about 1% of each operand; max scaling clips nothing
    n = 16 * 64
    assert 0 < r["int4", "percentile"]["a_clipped"] <= 0.02 * n and r["int4", "max"]["a_clipped"] == 0
    # ... and at 4 bits it beats max scaling on a heavy-tailed (Laplace) tensor
    assert r["int4", "percentile"]["f32_sqnr_db"] > r["int4", "max"]["f32_sqnr_db"]


def test_numsim_quant_quantizers(tmp_path):
    # A quantizer of numsim.quant by name: ptq with round-to-nearest is the built-in 'max' quantizer
    # (step = max|x| / 7 for INT4), so the two variants give the same numbers.
    spec = {"sweep": {"unit": "int4_int32"},
            "grid": {"quant": {"a": {"method": ["max", "numsim.quant.ptq"]}}},
            "quant": {"a": {"args": {"bits": 4, "rounding": "nearest_even"}}},
            "workload": [{"kind": "random", "m": 8, "k": 64, "n": 8}]}
    res = run_sweep(spec, tmp_path / "a", scheduler="sync")
    r0, r1 = res.rows
    assert r1["quant.a.method"] == "numsim.quant.ptq"
    for k in ("f32_sqnr_db", "f32_bias", "f32_max_abs_err"):
        assert r0[k] == r1[k]
    # one argument of such a quantizer swept as a parameter
    spec2 = dict(spec, grid={"quant": {"a": {"args": {"rounding": ["nearest_even", "stochastic"]}}}},
                 quant={"a": {"method": "numsim.quant.ptq", "args": {"bits": 4}}})
    res2 = run_sweep(spec2, tmp_path / "c", scheduler="sync")
    assert [r["quant.a.args.rounding"] for r in res2.rows] == ["nearest_even", "stochastic"]
    assert res2.rows[0]["f32_sqnr_db"] == r0["f32_sqnr_db"] != res2.rows[1]["f32_sqnr_db"]
    # a quantizer whose codes are not the unit's operand format is refused before any work
    spec["quant"] = {"a": {"args": {"bits": 4}}}
    spec["grid"] = {"quant": {"a": {"method": ["numsim.quant.sawb_quantize"]}}}
    with pytest.raises(NumsimError, match="gives int5 codes but the unit's a_fmt is int4"):
        run_sweep(spec, tmp_path / "b")
    assert not (tmp_path / "b").exists()
    spec["grid"] = {"quant": {"a": {"method": ["numsim.quant.no_such_quantizer"]}}}
    with pytest.raises(NumsimError, match="numsim.quant.NAME"):
        run_sweep(spec, tmp_path / "b")


def test_pow2_step_and_sample_shifts_are_numsim_quant_choices():
    # the sweep's power-of-two steps and per-sample shifts are numsim.quant's (exact, frexp-based):
    # a max one ulp above 7 * 2^k needs step 2^(k+1), and nothing is clipped
    from numsim.quant import round_pow2, sample_shifts
    from numsim.sweep.quantize import quantize_operand

    x = np.array([[7.0 * 4 * (1 + 2.0**-52), 1.0, -0.5], [0.25, 3.0, 0.0]])
    q = {"method": "pow2", "rounding": "nearest_even", "granularity": "tensor", "percentile": 99.99, "scale": 1.0,
         "seed": None, "args": {}}
    qt, clipped = quantize_operand(x, "int4", q, "a", 0, 0)
    assert qt.scale == round_pow2(np.abs(x).max() / 7, "up") == 8.0 and clipped == 0
    qt, clipped = quantize_operand(x, "int4", dict(q, granularity="sample_shift"), "a", 0, 0)
    assert np.array_equal(qt.sample_shift, sample_shifts(np.abs(x).max(axis=0), np.abs(x).max(), 4))
    assert clipped == 0
