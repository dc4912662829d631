"""The sweep's GEMMs: [[workload]] tables (npy / npz files, random tensors, the digits model) loaded,
checked and fingerprinted. The digits model itself is numsim.workloads'; here its layers become GEMMs."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NumsimError, bad

DISTRIBUTIONS = ("normal", "uniform", "laplace", "lognormal", "student_t", "half_normal")
WORKLOAD_KINDS = ("npy", "npz", "digits", "random")


@dataclass
class Gemm:
    """One GEMM: a (M, K) @ b (K, N). Real operands are quantized per variant; code operands
    (codes_fmt set) are used as they are."""

    name: str
    a: np.ndarray
    b: np.ndarray
    codes_fmt: dict = field(default_factory=lambda: {"a": None, "b": None})
    scale: dict = field(default_factory=lambda: {"a": 1.0, "b": 1.0})
    f32: np.ndarray | None = None   # float32 product of the unquantized operands

    @property
    def shape(self):
        return (self.a.shape[0], self.a.shape[1], self.b.shape[1])


@dataclass
class WorkloadData:
    gemms: list
    fingerprint: list


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _real(x, arg):
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise bad(arg, "a real array", f"dtype {x.dtype}")
    if x.ndim != 2:
        raise bad(arg, "a 2-D operand", f"shape {x.shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise bad(arg, "finite values", "NaN or inf")
    return x


def _random_tensor(rng, dist, shape, scale, df, arg):
    if dist == "normal":
        return rng.standard_normal(shape) * scale
    if dist == "uniform":
        return rng.uniform(-scale, scale, shape)
    if dist == "laplace":
        return rng.laplace(0.0, scale, shape)
    if dist == "lognormal":   # signed log-normal: heavy-tailed magnitudes, random signs
        return rng.lognormal(0.0, scale, shape) * rng.choice([-1.0, 1.0], shape)
    if dist == "student_t":
        return rng.standard_t(df, shape) * scale
    if dist == "half_normal":  # post-ReLU-like, non-negative
        return np.abs(rng.standard_normal(shape)) * scale
    raise bad(arg, f"one of {list(DISTRIBUTIONS)}", repr(dist))


def _wl_keys(w, allowed, arg):
    for k in w:
        if k not in allowed:
            raise bad(arg, f"keys {sorted(allowed)}", repr(k))


def load_workloads(spec) -> WorkloadData:
    """Every workload's GEMMs, loaded and checked (shapes, finiteness, code ranges)."""
    from ..codec import check_codes

    wls = spec.get("workload")
    if wls is None:
        raise NumsimError("workload: no workloads: add [[workload]] tables (kind = npy | npz | digits | random)")
    if isinstance(wls, dict):
        wls = [wls]
    if not isinstance(wls, list) or not wls:
        raise bad("workload", "one or more [[workload]] tables", repr(wls))
    base = Path(spec.get("_base_dir", "."))
    seed = spec.get("sweep", {}).get("seed", 0)
    gemms, fp = [], []
    for wi, w in enumerate(wls):
        arg = f"workload[{wi}]"
        if not isinstance(w, dict):
            raise bad(arg, "a table", type(w).__name__)
        kind = w.get("kind")
        if kind not in WORKLOAD_KINDS:
            raise bad(f"{arg}.kind", f"one of {list(WORKLOAD_KINDS)}", repr(kind))
        name = w.get("name", f"{kind}{wi}")
        if kind == "random":
            _wl_keys(w, {"kind", "name", "m", "k", "n", "dist", "a_dist", "b_dist", "scale", "df", "seed"}, arg)
            m, k, n = (w.get(x) for x in ("m", "k", "n"))
            for key, v in (("m", m), ("k", k), ("n", n)):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise bad(f"{arg}.{key}", "a positive integer", repr(v))
            dist = w.get("dist", "normal")
            wseed = w.get("seed", seed)
            rng = np.random.default_rng([int(wseed), wi])
            a = _random_tensor(rng, w.get("a_dist", dist), (m, k), float(w.get("scale", 1.0)),
                               float(w.get("df", 3.0)), f"{arg}.a_dist")
            b = _random_tensor(rng, w.get("b_dist", dist), (k, n), float(w.get("scale", 1.0)),
                               float(w.get("df", 3.0)), f"{arg}.b_dist")
            gemms.append(Gemm(name, a, b))
            fp.append({k2: w[k2] for k2 in sorted(w)} | {"seed": wseed})
        elif kind in ("npy", "npz"):
            keys = {"kind", "name", "a", "b", "path", "a_fmt", "b_fmt", "a_scale", "b_scale", "transpose_a",
                    "transpose_b"}
            _wl_keys(w, keys, arg)
            if kind == "npy":
                paths = {op: base / str(w.get(op, "")) for op in ("a", "b")}
                for op, p in paths.items():
                    if op not in w or not p.is_file():
                        raise bad(f"{arg}.{op}", "the path of an existing .npy file", repr(str(w.get(op))))
                try:
                    arrs = {op: np.load(p, allow_pickle=False) for op, p in paths.items()}
                except ValueError as e:
                    raise NumsimError(f"{arg}: could not read the .npy files: {e}") from None
                fp.append({"kind": "npy", "name": name, "a": _file_digest(paths["a"]),
                           "b": _file_digest(paths["b"])} | {k2: w[k2] for k2 in w if k2 not in ("a", "b")})
            else:
                p = base / str(w.get("path", ""))
                if "path" not in w or not p.is_file():
                    raise bad(f"{arg}.path", "the path of an existing .npz file", repr(str(w.get("path"))))
                with np.load(p, allow_pickle=False) as z:
                    arrs = {}
                    for op in ("a", "b"):
                        key = w.get(op, op)
                        if key not in z.files:
                            raise bad(f"{arg}.{op}", f"an array name in {p.name} ({', '.join(z.files)})", repr(key))
                        arrs[op] = z[key]
                fp.append({"kind": "npz", "name": name, "file": _file_digest(p)}
                          | {k2: w[k2] for k2 in w if k2 != "path"})
            for op in ("a", "b"):
                if w.get(f"transpose_{op}", False):
                    arrs[op] = arrs[op].T
            g = Gemm(name, None, None)
            for op in ("a", "b"):
                fmt = w.get(f"{op}_fmt")
                if fmt is not None:    # operands given as codes of a declared format
                    from ..formats import get_format
                    f = get_format(fmt)
                    c = np.asarray(arrs[op])
                    if c.ndim != 2:
                        raise bad(f"{arg}.{op}", "a 2-D array of codes", f"shape {c.shape}")
                    if c.dtype.kind not in "iu":
                        raise bad(f"{arg}.{op}", f"{f} codes (an unsigned integer array)", f"dtype {c.dtype}")
                    c = check_codes(c, f, f"{arg}.{op}")
                    setattr(g, op, c)
                    g.codes_fmt[op] = str(fmt)
                    s = float(w.get(f"{op}_scale", 1.0))
                    if not (math.isfinite(s) and s > 0):
                        raise bad(f"{arg}.{op}_scale", "a finite positive scale", repr(s))
                    g.scale[op] = s
                else:
                    setattr(g, op, _real(arrs[op], f"{arg}.{op}"))
            gemms.append(g)
        else:  # digits
            _wl_keys(w, {"kind", "name", "gemms", "hidden", "train_steps", "batch", "lr", "seed"}, arg)
            hidden = w.get("hidden", [128, 64])
            hidden = [hidden] if isinstance(hidden, int) else hidden
            params = {"hidden": hidden, "train_steps": w.get("train_steps", 300), "batch": w.get("batch", 128),
                      "lr": w.get("lr", 0.1), "seed": w.get("seed", seed)}
            if not (isinstance(hidden, list) and hidden and all(isinstance(h, int) and not isinstance(h, bool)
                                                                 and h >= 1 for h in hidden)):
                raise bad(f"{arg}.hidden", "a positive layer width or a list of them", repr(hidden))
            for key, lo in (("train_steps", 0), ("batch", 1), ("seed", 0)):
                v = params[key]
                if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                    raise bad(f"{arg}.{key}", f"an integer >= {lo}", repr(v))
            lr = params["lr"]
            if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (math.isfinite(lr) and lr > 0):
                raise bad(f"{arg}.lr", "a finite positive learning rate", repr(lr))
            sel = w.get("gemms", "backward")
            for gname, a, b in digits_gemms(sel, arg=f"{arg}.gemms", **params):
                gemms.append(Gemm(f"{name}.{gname}" if "name" in w else gname, a, b))
            fp.append({"kind": "digits", "gemms": sel, **params, "name": w.get("name")})
    for g in gemms:
        if g.a.shape[1] != g.b.shape[0]:
            raise NumsimError(f"workload {g.name}: a is {g.a.shape} and b is {g.b.shape}: the reduction lengths "
                              f"differ")
        if min(g.shape) < 1:
            raise NumsimError(f"workload {g.name}: empty GEMM {g.shape}")
        if g.codes_fmt["a"] is None and g.codes_fmt["b"] is None:
            g.f32 = g.a.astype(np.float32) @ g.b.astype(np.float32)
        else:  # with code operands there is no unquantized source: the decoded values stand in for it
            from ..codec import decode
            va = decode(g.a, g.codes_fmt["a"]) * g.scale["a"] if g.codes_fmt["a"] else g.a
            vb = decode(g.b, g.codes_fmt["b"]) * g.scale["b"] if g.codes_fmt["b"] else g.b
            g.f32 = va.astype(np.float32) @ vb.astype(np.float32)
    names = [g.name for g in gemms]
    if len(set(names)) != len(names):
        raise NumsimError(f"workload: GEMM names must be unique; got {names} (give each workload a name)")
    return WorkloadData(gemms, fp)


# ---- the digits model (numsim.workloads) -----------------------------------------------------------

DIGITS_KINDS = ("forward", "weight_grad", "input_grad")


def digits_layers(hidden=(128, 64), train_steps=300, batch=128, lr=0.1, seed=0):
    """[(name, x, weight, grad_out)] of every Linear layer of the digits MLP on a held-out batch after
    training (numsim.workloads.digits_mlp_workload), and the source used."""
    from .. import workloads

    try:
        recs = workloads.digits_mlp_workload(batch_size=batch, hidden=tuple(hidden), train_steps=train_steps,
                                             lr=lr, seed=seed)
    except NumsimError as e:
        raise NumsimError(f"workload: {e}") from None
    except ImportError:
        raise NumsimError("workload: kind = 'digits' needs scikit-learn (pip install scikit-learn)") from None
    return [(r.name, r.x, r.weight, r.grad_out) for r in recs], "numsim.workloads"


def digits_gemms(select="backward", hidden=(128, 64), train_steps=300, batch=128, lr=0.1, seed=0, arg="gemms"):
    """GEMMs of the digits MLP: [(name, a (M, K), b (K, N))], operands arranged so that the first is the
    activation or weight and the second the gradient (the INT4 x FP4 backward GEMMs of seed 003):

    - fcL.forward = x (batch, in) @ W (in, out);
    - fcL.weight_grad = x^T (in, batch) @ dz (batch, out): dW, reduced over the batch;
    - fcL.input_grad = W (in, out) @ dz^T (out, batch): dx^T, reduced over the layer's outputs
      (layers after the first: the first layer's input gradient is not needed).
    select: 'forward', 'backward', 'all', or a list of names.
    """
    layers, _ = digits_layers(hidden, train_steps, batch, lr, seed)
    avail = {}
    for i, (name, x, w, g) in enumerate(layers):
        avail[f"{name}.forward"] = (x, w)
        avail[f"{name}.weight_grad"] = (x.T.copy(), g)
        if i > 0:
            avail[f"{name}.input_grad"] = (w, g.T.copy())
    if isinstance(select, str) and select in ("forward", "backward", "all"):
        sel = [n for n in avail if select == "all" or (select == "forward") == n.endswith(".forward")]
    elif isinstance(select, list) and all(isinstance(n, str) for n in select):
        sel = select
    else:
        raise bad(arg, "'forward', 'backward', 'all' or a list of GEMM names", repr(select))
    for n in sel:
        if n not in avail:
            raise bad(arg, f"GEMM names from {list(avail)} (or forward / backward / all)", repr(n))
    return [(n, *avail[n]) for n in sel]
