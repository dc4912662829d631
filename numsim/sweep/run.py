"""Running a sweep: one variant a task (Dask optional: local threads, a distributed cluster, or this
thread), each finished variant saved at once (resume), the table of every finished variant."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NumsimError, bad
from .metrics import error_sums, metrics_from_sums, pool_sums, reference_product, _saturated
from .quantize import quantize_operand
from .report import write_reports
from .spec import _canon, load_spec, plan_sweep
from .workloads import WorkloadData

def _matmul():
    import numsim
    mm = getattr(numsim, "matmul", None)
    if mm is None:
        from ..gemm import matmul as mm
    return mm


@dataclass
class VariantTask:
    """What one Dask task needs (the workloads travel separately, once per worker)."""

    index: int
    variant_id: str
    params: dict
    unit: object
    quant: dict
    seed: int
    nthreads: int

    def __getstate__(self):
        # A unit caches its C descriptor (cffi memory) once used; ship a fresh copy to other processes.
        state = dict(self.__dict__)
        state["unit"] = dataclasses.replace(self.unit)
        return state


def run_variant(task: VariantTask, data: WorkloadData) -> dict:
    """Run one variant over every GEMM; never raises (a failure is returned as status 'error')."""
    try:
        return _run_variant(task, data)
    except Exception as e:   # noqa: BLE001 -- reported per variant, the sweep goes on
        return {"variant": task.index, "variant_id": task.variant_id, "params": task.params, "status": "error",
                "error": f"{type(e).__name__}: {e}"}


def _run_variant(task, data):
    from ..formats import get_format
    from ..qtensor import QTensor

    unit = task.unit
    matmul = _matmul()
    acc_fmt = get_format(unit.acc_fmt)
    rows, ref_sums, f32_sums = [], [], []
    tot_s = tot_mac = 0.0
    tot_ovf = tot_sat = 0
    for gi, g in enumerate(data.gemms):
        ops, clipped = {}, {}
        for op in ("a", "b"):
            fmt = getattr(unit, f"{op}_fmt")
            if g.codes_fmt[op] is not None:
                ops[op] = QTensor(getattr(g, op), fmt, g.scale[op])
                clipped[op] = 0
            else:
                ops[op], clipped[op] = quantize_operand(getattr(g, op), fmt, task.quant[op], op, task.seed, gi)
        t0 = time.perf_counter()
        res = matmul(ops["a"], ops["b"], unit=unit, nthreads=task.nthreads)
        dt = time.perf_counter() - t0
        values = np.asarray(res.values, dtype=np.float64)   # the output scale (value_scale included) applied
        ref = reference_product(ops["a"], ops["b"])
        s_ref = error_sums(values, ref)
        s_f32 = error_sums(values, g.f32.astype(np.float64))
        M, K, N = g.shape
        sat = _saturated(np.asarray(res.acc_values), acc_fmt)
        row = {"gemm": g.name, "M": M, "K": K, "N": N}
        row.update(metrics_from_sums(s_ref))
        row.update({f"f32_{k}": v for k, v in metrics_from_sums(s_f32).items()})
        row.update({"overflows": int(res.overflow_count), "saturated": sat, "a_clipped": clipped["a"],
                    "b_clipped": clipped["b"], "seconds": dt, "mmac_per_s": M * K * N / dt / 1e6 if dt > 0 else 0.0})
        rows.append(row)
        ref_sums.append(s_ref)
        f32_sums.append(s_f32)
        tot_s += dt
        tot_mac += M * K * N
        tot_ovf += row["overflows"]
        tot_sat += sat
    if len(rows) > 1:
        row = {"gemm": "all", "M": sum(r["M"] for r in rows), "K": max(r["K"] for r in rows),
               "N": sum(r["N"] for r in rows)}
        row.update(metrics_from_sums(pool_sums(ref_sums)))
        row.update({f"f32_{k}": v for k, v in metrics_from_sums(pool_sums(f32_sums)).items()})
        row.update({"overflows": tot_ovf, "saturated": tot_sat, "a_clipped": sum(r["a_clipped"] for r in rows),
                    "b_clipped": sum(r["b_clipped"] for r in rows), "seconds": tot_s,
                    "mmac_per_s": tot_mac / tot_s / 1e6 if tot_s > 0 else 0.0})
        rows.append(row)
    return {"variant": task.index, "variant_id": task.variant_id, "params": task.params, "status": "ok",
            "unit": unit.describe(), "rows": rows}


# ---- execution -----------------------------------------------------------------------------------

@dataclass
class SweepResult:
    out_dir: Path
    rows: list              # table rows (dicts), variant order then GEMM order
    ran: int                # variants computed in this call
    reused: int             # variants found finished on disk
    failures: list          # {"variant", "variant_id", "params", "error"}
    files: dict             # name -> path of the written reports


def _connect(scheduler, timeout):
    """A distributed Client for an address, or NumsimError (before any work starts)."""
    try:
        from distributed import Client
    except ImportError:
        raise NumsimError("scheduler: a Dask cluster needs the 'distributed' package (pip install numsim[sweep])") \
            from None
    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise bad("scheduler", "a scheduler address such as tcp://host:8786", repr(scheduler))
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise NumsimError(f"scheduler: could not connect to {scheduler}: {e}") from None


def _write_json(path, obj):
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    os.replace(tmp, path)        # atomic: a reader never sees half a result


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return str(x)


def run_sweep(spec, out_dir, scheduler=None, workers=None, progress=False, limit=None, on_result=None,
              connect_timeout=5.0, report=True) -> SweepResult:
    """Run a sweep (a spec dict or a TOML path) into out_dir; see the module docstring.

    scheduler: None (local threads), 'threads', 'sync', or a distributed address 'tcp://...' or a
    distributed.Client. workers: local threads (default: the CPU count). limit: compute at most this
    many new variants in this call. on_result(record): called after each finished variant is saved.
    """
    if isinstance(spec, (str, os.PathLike)):
        spec = load_spec(spec)
    plan = plan_sweep(spec)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise bad("workers", "a positive integer", repr(workers))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise bad("limit", "a non-negative integer", repr(limit))
    client, own_client = None, False
    if scheduler not in (None, "threads", "sync"):
        if isinstance(scheduler, str):
            client, own_client = _connect(scheduler, connect_timeout), True
        elif hasattr(scheduler, "submit") and hasattr(scheduler, "scatter"):
            client = scheduler
        else:
            raise bad("scheduler", "None, 'threads', 'sync', a tcp:// address or a distributed.Client",
                      repr(scheduler))
    try:
        out = Path(out_dir)
        vdir = out / "variants"
        vdir.mkdir(parents=True, exist_ok=True)
        _write_json(out / "sweep.json", {k: v for k, v in spec.items() if not k.startswith("_")})
        done = {}
        for v in plan.variants:
            p = vdir / f"{v.variant_id}.json"
            if p.is_file():
                try:
                    rec = json.loads(p.read_text())
                except json.JSONDecodeError:
                    continue       # a torn file from an old crash: recompute
                if rec.get("status") == "ok" and rec.get("variant_id") == v.variant_id:
                    done[v.variant_id] = rec
        reused = len(done)
        todo = [i for i, v in enumerate(plan.variants) if v.variant_id not in done]
        if limit is not None:
            todo = todo[:limit]
        tasks = [VariantTask(i, plan.variants[i].variant_id, plan.variants[i].params, plan.units[i], plan.quants[i],
                             plan.seed, plan.nthreads) for i in todo]
        failures, ran = [], 0
        bar = None
        if progress and tasks:
            try:
                from tqdm import tqdm
                bar = tqdm(total=len(tasks), desc=f"sweep {plan.name}", unit="variant")
            except ImportError:
                bar = None

        def finished(rec):
            nonlocal ran
            if rec["status"] == "ok":
                _write_json(vdir / f"{rec['variant_id']}.json", rec)
                done[rec["variant_id"]] = rec
                ran += 1
            else:
                failures.append({k: rec[k] for k in ("variant", "variant_id", "params", "error")})
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(rec)

        try:
            if tasks:
                if client is not None:
                    _run_distributed(client, tasks, plan.workloads, finished)
                else:
                    _run_local(tasks, plan.workloads, finished, scheduler or "threads", workers)
        finally:
            if bar is not None:
                bar.close()
            rows = table_rows(plan, done)
            files = {}
            if report:
                files = write_reports(plan, rows, out, failures)
            if failures:
                _write_json(out / "failures.json", failures)
            elif (out / "failures.json").exists():
                (out / "failures.json").unlink()
        return SweepResult(out, rows, ran, reused, failures, files)
    finally:
        if own_client:
            client.close()


def _run_local(tasks, data, finished, scheduler, workers):
    try:
        import dask
        from dask.callbacks import Callback
    except ImportError:      # dask is optional: without it the sweep runs in this thread
        dask = None
    if dask is None or scheduler == "sync":
        for t in tasks:
            finished(run_variant(t, data))
        return

    dkey = "numsim-sweep-workloads"
    dsk = {dkey: data}
    keys = []
    for t in tasks:
        k = f"numsim-sweep-{t.variant_id}"
        dsk[k] = (run_variant, t, dkey)
        keys.append(k)
    key_set = set(keys)

    def post(key, result, dsk_, state, worker_id):
        if key in key_set:
            finished(result)      # runs in the scheduling thread: results are saved one at a time

    from dask.threaded import get

    with Callback(posttask=post):
        get(dsk, keys, num_workers=workers or os.cpu_count() or 1)


def _run_distributed(client, tasks, data, finished):
    from distributed import as_completed

    dfut = client.scatter(data, broadcast=True)
    futs = {client.submit(run_variant, t, dfut, key=f"numsim-sweep-{t.variant_id}", pure=False): t for t in tasks}
    try:
        for fut in as_completed(list(futs)):
            t = futs[fut]
            try:
                rec = fut.result()
            except Exception as e:   # noqa: BLE001 -- a lost worker: report this variant, keep the others
                rec = {"variant": t.index, "variant_id": t.variant_id, "params": t.params, "status": "error",
                       "error": f"{type(e).__name__}: {e}"}
            finished(rec)
    finally:
        for f in futs:
            if not f.done():
                f.cancel()


# ---- the table -----------------------------------------------------------------------------------

def table_rows(plan, done):
    """Rows of every finished variant in variant order: index, id, swept parameters, GEMM, metrics."""
    rows = []
    for v in plan.variants:
        rec = done.get(v.variant_id)
        if rec is None:
            continue
        for r in rec["rows"]:
            row = {"variant": v.index, "variant_id": v.variant_id}
            for k in plan.param_keys:
                val = v.params.get(k, "")
                row[k] = val if isinstance(val, (int, float, str, bool)) else _canon(val)
            row.update(r)
            rows.append(row)
    return rows
