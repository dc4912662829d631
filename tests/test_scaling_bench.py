"""Smoke test of benchmarks/scaling.py --quick (no timing asserted: speed targets live in benchmarks/)."""
import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "scaling.py"


def test_scaling_quick_writes_a_table(tmp_path):
    spec = importlib.util.spec_from_file_location("numsim_bench_scaling", _path)
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    out = tmp_path / "scaling.md"
    rows = scaling.main(["--quick", "--sizes", "32", "--units", "fp16_fp32", "int4_int32", "--out", str(out)])
    text = out.read_text()
    assert "| fp16_fp32 |" in text and "| int4_int32 |" in text
    assert {r[2] for r in rows} == {"numpy float32 matmul", "fp16_fp32", "int4_int32"}
    assert all(r[3] > 0 for r in rows)
