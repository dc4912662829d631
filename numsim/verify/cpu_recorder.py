"""Record the CPU's own dot-product instructions on adversarial tiles (issue 19), in the layout of the
GPU recordings (A (T, M, K), B (T, K, N), C and D (T, M, N), family (T,)) plus what identifies them:
`unit` (the preset that models the instruction), `a_fmt`, `b_fmt`, `instruction` and `cpu` (vendor,
model, flags). `numsim verify-hardware FILE` replays such a file through its unit.

    numsim.verify.cpu_recorder.record("vdpbf16ps", "cpu_vdpbf16ps.npz", tiles=512)

The input families follow ../shared/data/h100: 0 small integers (exact results, prove the layouts),
1 normal, 2 wide exponents, 3 one large product, 4 large c / near overflow, 5 cancellation,
6 tiny values and subnormals, 7 random bit patterns. The C side is csrc/cpurec*.c.
"""
from __future__ import annotations

import json
import os
import platform

import numpy as np

from .._ffi import cptr, lib
from ..codec import encode
from ..errors import NumsimError, bad

FAMILY_NAMES = {0: "small integers", 1: "normal", 2: "wide exponents", 3: "one large product",
                4: "large c / near overflow", 5: "cancellation", 6: "tiny / subnormal", 7: "random bits"}


# instruction -> (preset, a_fmt, b_fmt, acc dtype, M, N, K)
INSTRUCTIONS = {
    "vdpbf16ps": ("x86_vdpbf16ps", "bf16", "bf16", np.uint32, 16, 8, 32),
    "tdpbf16ps": (None, "bf16", "bf16", np.uint32, 16, 16, 64),
    "tdpbssd": ("x86_tdpbssd", "int8", "int8", np.int32, 16, 16, 128),
    "tdpbusd": ("x86_tdpbusd", "uint8", "int8", np.int32, 16, 16, 128),
    "tdpbsud": ("x86_tdpbsud", "int8", "uint8", np.int32, 16, 16, 128),
    "tdpbuud": ("x86_tdpbuud", "uint8", "uint8", np.int32, 16, 16, 128),
    "vpdpbusd": ("x86_vpdpbusd", "uint8", "int8", np.int32, 16, 8, 64),
    "vpdpbusds": ("x86_vpdpbusds", "uint8", "int8", np.int32, 16, 8, 64),
    "vfmadd231ph": ("x86_vfmadd231ph", "fp16", "fp16", np.uint16, 32, 8, 32),
}


def cpu_description() -> dict:
    """Vendor, model name and the CPU flags that matter here (from /proc/cpuinfo where present)."""
    info = {"machine": platform.machine(), "vendor": "", "model": platform.processor(), "flags": []}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "vendor_id" and not info["vendor"]:
                    info["vendor"] = val
                elif key == "model name" and not info["model"]:
                    info["model"] = val
                elif key == "model name":
                    info["model"] = info["model"] or val
                elif key == "flags" and not info["flags"]:
                    info["flags"] = sorted(x for x in val.split() if x.startswith(("avx512", "amx", "avx_vnni",
                                                                                    "fma", "f16c", "avx2")))
    except OSError:
        pass
    return info


def _fp_family(rng, fam, shape, fmt, scale_exp):
    """Real values of one float family for a format with exponent range +-scale_exp."""
    if fam == 0:
        return rng.integers(-8, 9, shape).astype(np.float64)
    if fam == 1:
        return rng.standard_normal(shape)
    if fam == 2:
        return rng.choice([-1.0, 1.0], shape) * np.exp2(rng.uniform(-scale_exp, scale_exp, shape))
    if fam == 3:
        x = rng.standard_normal(shape) * 2.0 ** -12
        idx = rng.integers(0, shape[-1], shape[:-1])
        np.put_along_axis(x, idx[..., None], rng.choice([-1.0, 1.0], shape[:-1])[..., None] * 2.0 ** 10, axis=-1)
        return x
    if fam == 4:
        return rng.choice([-1.0, 1.0], shape) * np.exp2(rng.uniform(scale_exp * 0.45, scale_exp * 0.55, shape))
    if fam == 6:
        return rng.choice([-1.0, 1.0], shape) * np.exp2(rng.uniform(-scale_exp - 8, -scale_exp * 0.5, shape))
    return rng.standard_normal(shape)


def _float_operands(rng, fam, T, M, N, K, fmt):
    """(A codes, B codes) of a float family; family 5 mirrors pairs so that products cancel."""
    bits = 16
    emax = 127 if fmt == "bf16" else 15
    if fam == 7:
        return (rng.integers(0, 2 ** bits, (T, M, K)).astype(np.uint16),
                rng.integers(0, 2 ** bits, (T, K, N)).astype(np.uint16))
    if fam == 5:
        a = rng.standard_normal((T, M, K))
        a[..., 1::2] = -a[..., 0::2]
        b = rng.standard_normal((T, K, N))
        b[:, 1::2, :] = b[:, 0::2, :]
        flip = rng.integers(0, K // 2, (T,))
        for t in range(T):                       # one pair off by one input ulp
            b[t, 2 * flip[t] + 1] *= 1 + 2.0 ** -7
    else:
        a = _fp_family(rng, fam, (T, M, K), fmt, emax)
        b = _fp_family(rng, fam, (T, K, N), fmt, emax)
    return (encode(a, fmt, overflow="saturate", underflow="round"),
            encode(b, fmt, overflow="saturate", underflow="round"))


def _float_acc(rng, fam, shape, acc):
    """Initial accumulators (fp32 or fp16 bits) for a float family."""
    if acc == np.uint16:
        fmt, emax = "fp16", 15
    else:
        fmt, emax = "fp32", 127
    if fam == 7:
        return rng.integers(0, 2 ** (8 * np.dtype(acc).itemsize), shape).astype(acc)
    if fam == 0:
        v = rng.integers(-100, 101, shape).astype(np.float64)
    elif fam == 4:
        v = rng.choice([-1.0, 1.0], shape) * np.exp2(rng.uniform(emax - 3, emax + 0.99, shape))
    elif fam == 6:
        sub = 2.0 ** (-emax + 1) if acc == np.uint32 else 2.0 ** -14
        v = rng.choice([-1.0, 1.0], shape) * sub * rng.uniform(0, 2, shape)
    elif fam == 5:
        v = np.where(rng.integers(0, 2, shape) == 1, 0.0, rng.standard_normal(shape) * 2.0 ** -10)
    elif fam == 2:
        v = rng.choice([-1.0, 1.0], shape) * np.exp2(rng.uniform(-emax, emax, shape))
    else:
        v = 4 * rng.standard_normal(shape)
    with np.errstate(over="ignore"):
        return encode(v, fmt, overflow="saturate", underflow="round").astype(acc)


def _int_operands(rng, fam, T, M, N, K, a_fmt, b_fmt):
    def draw(shape, fmt):
        lo, hi = (0, 256) if fmt == "uint8" else (-128, 128)
        if fam == 0:
            return rng.integers(max(lo, -8), 9, shape)
        if fam == 3:          # extremes
            return rng.choice([lo, hi - 1], shape)
        return rng.integers(lo, hi, shape)

    a = draw((T, M, K), a_fmt).astype(np.uint8 if a_fmt == "uint8" else np.int8)
    b = draw((T, K, N), b_fmt).astype(np.uint8 if b_fmt == "uint8" else np.int8)
    if fam in (2, 3):         # c near the int32 limits: wrap and saturation
        c = rng.choice([-1, 1], (T, M, N)) * (2 ** 31 - rng.integers(1, 2 ** 20, (T, M, N)))
    elif fam == 0:
        c = rng.integers(-100, 101, (T, M, N))
    else:
        c = rng.integers(-2 ** 30, 2 ** 30, (T, M, N))
    return a, b, np.clip(c, -2 ** 31, 2 ** 31 - 1).astype(np.int32)


def run_instruction(instruction, A, B, C):
    """D of the instruction on tiles A (T, M, K), B (T, K, N), C (T, M, N) in the recorder's layout."""
    if instruction not in INSTRUCTIONS:
        raise bad("instruction", f"one of {sorted(INSTRUCTIONS)}", repr(instruction))
    _, a_fmt, b_fmt, acc, M, N, K = INSTRUCTIONS[instruction]
    A, B, C = (np.ascontiguousarray(x) for x in (A, B, C))
    T, Mx, Kx = A.shape
    Nx = B.shape[2]
    if B.shape[:2] != (T, Kx) or C.shape != (T, Mx, Nx) or Mx != M:
        raise bad("A, B, C", f"tiles (T, {M}, K), (T, K, N), (T, {M}, N)", (A.shape, B.shape, C.shape))
    D = np.empty(C.shape, C.dtype)
    if instruction == "vdpbf16ps":
        st = lib.ns_rec_vdpbf16ps(cptr("uint16_t *", A), cptr("uint16_t *", B), cptr("uint32_t *", C),
                                  cptr("uint32_t *", D), T, Kx, Nx)
    elif instruction == "tdpbf16ps":
        st = lib.ns_rec_tdpbf16ps(cptr("uint16_t *", A), cptr("uint16_t *", B), cptr("uint32_t *", C),
                                  cptr("uint32_t *", D), T, Kx)
    elif instruction.startswith("tdpb"):
        signs = {"tdpbssd": 0, "tdpbusd": 1, "tdpbsud": 2, "tdpbuud": 3}[instruction]
        st = lib.ns_rec_tdpbxxd(cptr("uint8_t *", A.view(np.uint8)), cptr("uint8_t *", B.view(np.uint8)),
                                cptr("int32_t *", C), cptr("int32_t *", D), T, Kx, signs)
    elif instruction.startswith("vpdpbusd"):
        st = lib.ns_rec_vpdpbusd(cptr("uint8_t *", A), cptr("int8_t *", B.view(np.int8)), cptr("int32_t *", C),
                                 cptr("int32_t *", D), T, Kx, Nx, 1 if instruction.endswith("s") else 0)
    else:
        st = lib.ns_rec_vfmadd231ph(cptr("uint16_t *", A), cptr("uint16_t *", B), cptr("uint16_t *", C),
                                    cptr("uint16_t *", D), T, Kx, Nx)
    if st == lib.NS_REC_ABSENT:
        raise NumsimError(f"instruction: {instruction} is not available on this CPU/OS")
    if st:
        raise NumsimError(f"instruction: the recorder rejected the {instruction} tiles (status {st})")
    return D


def available(instruction) -> bool:
    """Whether this CPU (and OS) runs the instruction (one tiny tile through the recorder)."""
    _, a_fmt, b_fmt, acc, M, N, K = INSTRUCTIONS[instruction]
    dt = {"bf16": np.uint16, "fp16": np.uint16, "int8": np.int8, "uint8": np.uint8}
    try:
        run_instruction(instruction, np.zeros((1, M, K), dt[a_fmt]), np.zeros((1, K, N), dt[b_fmt]),
                        np.zeros((1, M, N), acc))
    except NumsimError:
        return False
    return True


def make_tiles(instruction, tiles=256, seed=0):
    """(A, B, C, family) adversarial tiles for an instruction, families cycling t % 8 (int: t % 4)."""
    if instruction not in INSTRUCTIONS:
        raise bad("instruction", f"one of {sorted(INSTRUCTIONS)}", repr(instruction))
    if not (isinstance(tiles, int) and tiles >= 1):
        raise bad("tiles", "an int >= 1", tiles)
    _, a_fmt, b_fmt, acc, M, N, K = INSTRUCTIONS[instruction]
    nfam = 4 if acc == np.int32 else 8
    fam = np.arange(tiles) % nfam
    A = np.empty((tiles, M, K), np.uint16 if acc != np.int32 else (np.uint8 if a_fmt == "uint8" else np.int8))
    B = np.empty((tiles, K, N), np.uint16 if acc != np.int32 else (np.uint8 if b_fmt == "uint8" else np.int8))
    C = np.empty((tiles, M, N), acc)
    for f in range(nfam):
        sel = np.flatnonzero(fam == f)
        if not sel.size:
            continue
        rng = np.random.default_rng([19, seed, f, sum(map(ord, instruction))])
        if acc == np.int32:
            a, b, c = _int_operands(rng, f, sel.size, M, N, K, a_fmt, b_fmt)
        else:
            a, b = _float_operands(rng, f, sel.size, M, N, K, a_fmt)
            c = _float_acc(rng, f, (sel.size, M, N), acc)
        A[sel], B[sel], C[sel] = a, b, c
    return A, B, C, fam


def record(instruction, path, tiles=256, seed=0):
    """Run the instruction on adversarial tiles and write the recording (see module doc). Returns the path."""
    A, B, C, fam = make_tiles(instruction, tiles, seed)
    D = run_instruction(instruction, A, B, C)
    unit, a_fmt, b_fmt = INSTRUCTIONS[instruction][:3]
    meta = {"instruction": instruction, "cpu": cpu_description(), "seed": seed,
            "families": {str(k): v for k, v in FAMILY_NAMES.items()}}
    tmp = f"{path}.partial.npz"
    # tdpbf16ps has no preset yet (no model reproduces it: docs/hardware.md): unit "" records it anyway.
    np.savez_compressed(tmp, A=A, B=B, C=C, D=D, family=fam, unit=np.str_(unit or ""), a_fmt=np.str_(a_fmt),
                        b_fmt=np.str_(b_fmt), meta_json=np.str_(json.dumps(meta)))
    os.replace(tmp, path)
    return path
