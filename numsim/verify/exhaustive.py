"""The FP16 adder of the MAC units against its oracles: every one of the 2^32 operand pairs per rounding
mode (resumable), a stratified sample of every exponent pair, and an MPFR sample.

The adder under test is the C accumulate step `ns_f16_add(a, b, rounding)` (csrc/units.c), driven
through the vector loop `ns_f16_add_outer` (csrc/verify.c, a plain loop over the scalar adder).
The full sweep runs in chunks of `chunk_a` first operands x all 65536 second operands; its state (a
JSON-able dict, optionally saved to a file after every chunk) records finished chunks, so an
interrupted run resumes. Bad arguments raise NumsimError; nothing here prints or exits.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ..errors import bad
from .datapath import c_f16_add, c_f16_add_outer
from .oracles import ALL_CODES, MPFR_MODES, check_modes, mpfr_f16_add, numpy_f16_add

STATE_VERSION = 1


def stratified_pairs(per_stratum=16, seed=0):
    """Every (sign, exponent field) of a x every (sign, exponent field) of b: 4096 strata, each with the
    mantissas {0, 1, 0x200, 0x3FF} crossed with themselves and `per_stratum` random mantissa pairs."""
    rng = np.random.default_rng(seed)
    se = np.arange(64, dtype=np.uint32)                          # sign << 5 | exponent field
    sa, sb = np.meshgrid(se, se, indexing="ij")
    sa, sb = sa.ravel(), sb.ravel()
    edge = np.array([0, 1, 0x200, 0x3FF], dtype=np.uint32)
    ea, eb = np.meshgrid(edge, edge, indexing="ij")
    ma = np.concatenate([np.tile(ea.ravel(), (sa.size, 1)), rng.integers(0, 1024, (sa.size, per_stratum))], axis=1)
    mb = np.concatenate([np.tile(eb.ravel(), (sa.size, 1)), rng.integers(0, 1024, (sa.size, per_stratum))], axis=1)
    a = (sa[:, None] << 10) | ma
    b = (sb[:, None] << 10) | mb
    return a.ravel().astype(np.uint16), b.ravel().astype(np.uint16)



def describe_pair(a, b, got, want):
    f = lambda c: float(np.uint16(c).view(np.float16))  # noqa: E731
    return {"a": f"0x{int(a):04X}", "b": f"0x{int(b):04X}", "a_value": repr(f(a)), "b_value": repr(f(b)),
            "got": f"0x{int(got):04X}", "want": f"0x{int(want):04X}"}



def sweep_chunk(task):
    """(mode, a0, a1): every a in [a0, a1) x every b; returns counts and the first mismatches."""
    mode, a0, a1 = task
    t = time.perf_counter()
    a = ALL_CODES[a0:a1]
    got = c_f16_add_outer(a, ALL_CODES, mode)
    want = numpy_f16_add(a[:, None], ALL_CODES[None, :], mode)
    bad = got != want
    n_bad = int(np.count_nonzero(bad))
    examples = []
    if n_bad:
        for i, j in np.argwhere(bad)[:10]:
            examples.append(describe_pair(a[i], ALL_CODES[j], got[i, j], want[i, j]))
    return {"mode": mode, "a0": a0, "a1": a1, "pairs": int(got.size), "mismatches": n_bad,
            "nan_results": int(np.count_nonzero(((got & 0x7C00) == 0x7C00) & ((got & 0x3FF) != 0))),
            "examples": examples, "seconds": time.perf_counter() - t}



def _check_count(v, arg, lo=0):
    """An integer >= lo (counts and seeds of the samples; bools are not counts)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < lo:
        raise bad(arg, f"an int >= {lo}", repr(v))
    return int(v)


def sample_check(modes=("nearest_even",), per_stratum=64, seed=0):
    """C adder vs the numpy oracle on the stratified sample; {mode: {"pairs", "mismatches", "examples"}}."""
    modes = check_modes(modes)
    per_stratum, seed = _check_count(per_stratum, "per_stratum"), _check_count(seed, "seed")
    a, b = stratified_pairs(per_stratum, seed)
    out = {}
    for m in modes:
        got, want = c_f16_add(a, b, m), numpy_f16_add(a, b, m)
        bad_i = np.nonzero(got != want)[0]
        out[m] = {"pairs": int(a.size), "mismatches": int(bad_i.size),
                  "examples": [describe_pair(a[i], b[i], got[i], want[i]) for i in bad_i[:10]]}
    return out


def new_state(modes, chunk_a):
    """An empty sweep state: per mode the finished chunks (their first operand), counts, examples, times."""
    st = {"version": STATE_VERSION, "chunk_a": chunk_a, "modes": {}}
    return _add_modes(st, modes)


def _add_modes(st, modes):
    for m in modes:
        st["modes"].setdefault(m, {"done": [], "pairs": 0, "mismatches": 0, "nan_results": 0,
                                   "examples": [], "seconds": 0.0, "wall_seconds": 0.0})
    return st


def load_state(path, modes, chunk_a):
    """The state saved at `path` (extended by any new modes), or a new one when there is no file.
    NumsimError when the file is unreadable or belongs to a sweep with another chunk size."""
    if not (path and os.path.exists(path)):
        return new_state(modes, chunk_a)
    try:
        with open(path) as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        raise bad("state_path", "a sweep state file written by run_exhaustive", f"{path}: {e}") from None
    if not isinstance(st, dict) or st.get("version") != STATE_VERSION or not isinstance(st.get("modes"), dict):
        raise bad("state_path", f"a sweep state file of version {STATE_VERSION}", repr(path))
    if st.get("chunk_a") != chunk_a:
        raise bad("chunk_a", f"{st.get('chunk_a')} (the chunk size of the state in {path}; or delete that file)",
                  chunk_a)
    return _add_modes(st, modes)


def save_state(path, st):
    """Write the state atomically (a crash leaves the previous state, never half a file)."""
    if not path:
        return
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(st, f, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        raise bad("state_path", "a writable file path (None: the state is not saved)", f"{path}: {e}") from None


def pending_chunks(st, modes, chunk_a):
    """(mode, a0, a1) of every chunk the state has not finished, in sweep order."""
    tasks = []
    for m in modes:
        done = set(st["modes"][m]["done"])
        tasks += [(m, a0, a0 + chunk_a) for a0 in range(0, 65536, chunk_a) if a0 not in done]
    return tasks


def run_exhaustive(modes=("nearest_even",), workers=2, state_path="exhaustive_fp16_state.json", chunk_a=256,
                   max_chunks=None, on_chunk=None, state=None):
    """Run (or resume) the sweep; returns the state dict (per mode: done, pairs, mismatches, nan_results,
    examples, seconds, wall_seconds, complete).

    state_path: the file the state is read from and saved to after every chunk (None: not saved).
    state: a state dict to resume from instead of the file (it is updated in place).
    max_chunks: stop after this many chunks (a partial run). on_chunk(done, total): called after every
    finished chunk, with the chunks finished so far over all modes and the total (for a progress bar).
    """
    modes = check_modes(modes)
    if isinstance(chunk_a, bool) or not isinstance(chunk_a, (int, np.integer)) or chunk_a < 1 or 65536 % chunk_a:
        raise bad("chunk_a", "a positive divisor of 65536", repr(chunk_a))
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise bad("workers", "a positive int", repr(workers))
    if max_chunks is not None and (isinstance(max_chunks, bool) or not isinstance(max_chunks, (int, np.integer))
                                   or max_chunks < 0):
        raise bad("max_chunks", "None or an int >= 0", repr(max_chunks))
    if state_path is not None and not isinstance(state_path, (str, os.PathLike)):
        raise bad("state_path", "a file path or None", repr(state_path))
    state_path = None if state_path is None else os.fspath(state_path)
    if state is None:
        st = load_state(state_path, modes, chunk_a)
    else:
        if not isinstance(state, dict) or state.get("chunk_a") != chunk_a or "modes" not in state:
            raise bad("state", f"a sweep state dict with chunk_a {chunk_a}", repr(type(state).__name__))
        st = _add_modes(state, modes)
    save_state(state_path, st)     # an unwritable state_path fails here, before any chunk is computed
    tasks = pending_chunks(st, modes, chunk_a)
    if max_chunks is not None:
        tasks = tasks[:max_chunks]
    total = len(modes) * (65536 // chunk_a)
    finished = sum(len(st["modes"][m]["done"]) for m in modes)
    last = time.perf_counter()

    def record(res):
        nonlocal last, finished
        s = st["modes"][res["mode"]]
        s["done"].append(res["a0"])
        for key in ("pairs", "mismatches", "nan_results", "seconds"):
            s[key] += res[key]
        s["examples"] = (s["examples"] + res["examples"])[:20]
        now = time.perf_counter()
        s["wall_seconds"] += now - last
        last = now
        save_state(state_path, st)
        finished += 1
        if on_chunk is not None:
            on_chunk(finished, total)

    if workers > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for res in pool.imap_unordered(sweep_chunk, tasks):
                record(res)
    else:
        for task in tasks:
            record(sweep_chunk(task))
    for m in modes:
        s = st["modes"][m]
        s["complete"] = len(s["done"]) == 65536 // chunk_a
    save_state(state_path, st)
    return st


def mpfr_sample(modes=MPFR_MODES, n_random=100_000, per_stratum=1, seed=1):
    """C adder vs MPFR on uniformly random pairs plus one random pair of every exponent stratum."""
    modes = check_modes(modes)      # MPFR's own modes: mpfr_f16_add checks each
    n_random = _check_count(n_random, "n_random")
    per_stratum, seed = _check_count(per_stratum, "per_stratum"), _check_count(seed, "seed")
    rng = np.random.default_rng(seed)
    sa, sb = stratified_pairs(per_stratum, seed)
    a = np.concatenate([rng.integers(0, 65536, n_random).astype(np.uint16), sa])
    b = np.concatenate([rng.integers(0, 65536, n_random).astype(np.uint16), sb])
    out = {}
    for m in modes:
        got = c_f16_add(a, b, m)
        want = mpfr_f16_add(a, b, m)
        bad = np.nonzero(got != want)[0]
        out[m] = {"pairs": int(a.size), "mismatches": int(bad.size),
                  "examples": [describe_pair(a[i], b[i], got[i], want[i]) for i in bad[:10]]}
    return out

