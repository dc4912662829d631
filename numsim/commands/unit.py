"""`numsim unit [NAME] [--length K] [--seed S] [--set key=value ...]`: a MAC unit's description and a
worked example with its trace."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("unit", help="list MAC unit presets, or describe one and run a worked example")
    p.add_argument("name", nargs="?", help="a unit preset name (omit to list all)")
    p.add_argument("--length", type=int, default=8, help="reduction length K of the example (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the example's random operands")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a unit parameter, e.g. --set phase=odd --set order=pairwise")
    p.set_defaults(func=run)


def _parse_value(text):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def _fmt_value(v):
    import math

    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    return f"{v:.10g}"


def run(args):
    import numpy as np

    from ..codec import decode
    from ..errors import bad
    from ..units import unit_doc, unit_names

    if not args.name:
        names = unit_names()
        for n in names:
            print(f"{n:26} {unit_doc(n)}")
        return 0
    unit = unit_with_settings(args.name, args.set)
    if not 1 <= args.length <= 64:
        raise bad("--length", "1..64", args.length)
    print(unit.describe())
    doc = (type(unit).__doc__ or "").strip()
    if doc:
        print()
        print("\n".join("  " + line.strip() for line in doc.splitlines()))
    rng = np.random.default_rng(args.seed)
    K = args.length
    a = rng.integers(0, 2**unit.a_fmt.bits, K)
    b = rng.integers(0, 2**unit.b_fmt.bits, K)
    if unit.a_fmt.kind == "float":          # a readable example: finite operands of moderate size
        a = _finite_codes(rng, unit.a_fmt, K)
    if unit.b_fmt.kind == "float" and unit.b_fmt.radix == 2:
        b = _finite_codes(rng, unit.b_fmt, K)
    ctx = {}
    key = getattr(unit, "_ctx_key", None)
    if key == "align_shift":
        ctx[key] = rng.integers(0, 4, K)
    elif key == "sample_shift":
        ctx[key] = rng.integers(0, 5, K)
    res = unit.dot(a, b, trace=True, **ctx)
    av, bv = decode(a, unit.a_fmt), decode(b, unit.b_fmt)
    print(f"\nworked example (K={K}, seed {args.seed}, initial accumulator 0):")
    head = f"{'k':>3}  {'a code':>7} {'a':>10}  {'b code':>7} {'b':>10}"
    if key:
        head += f"  {key:>12}"
    print(head)
    w = (unit.a_fmt.bits + 3) // 4, (unit.b_fmt.bits + 3) // 4
    for k in range(K):
        line = (f"{k:>3}  {'0x' + format(int(a[k]), f'0{w[0]}X'):>7} {_fmt_value(av[k]):>10}  "
                f"{'0x' + format(int(b[k]), f'0{w[1]}X'):>7} {_fmt_value(bv[k]):>10}")
        if key:
            line += f"  {int(ctx[key][k]):>12}"
        print(line)
    acc = unit.acc_fmt
    wa = (acc.bits + 3) // 4
    tv = decode(np.array(res.trace, dtype=acc.dtype), acc) if res.trace else []
    print(f"\ntrace ({len(res.trace)} accumulator values, {acc}):")
    for i, (code, v) in enumerate(zip(res.trace, tv)):
        print(f"  step {i:>3}: 0x{code:0{wa}X}  {_fmt_value(v)}")
    print(f"\nresult: 0x{res.code:0{wa}X} = {_fmt_value(res.value)}"
          + (f"  (overflow events: {res.overflow_count})" if res.overflow_count else ""))
    if "even_code" in res.info:
        print(f"  even-phase accumulator 0x{res.info['even_code']:04X}; odd phase = its exponent field - 1"
              f" ({len(res.info['departures'])} departure(s) from the exact half)")
    if res.out_code is not None:
        print(f"  output stage {unit.out_fmt}: code 0x{res.out_code:02X} = {_fmt_value(float(decode(np.array([res.out_code]), unit.out_fmt)[0]))}")
    if hasattr(unit, "value_scale") and unit.value_scale != 1.0:
        print(f"  (accumulator LSB = {unit.value_scale:g} x the per-tensor step product)")
    from ..kernels import describe

    print("\nGEMM kernels (numsim.kernels, in preference order; each gives the MAC-level bits):")
    print("\n".join("  " + line for line in describe(unit).splitlines()))
    return 0


def _finite_codes(rng, fmt, n):
    import numpy as np

    from ..codec import encode

    x = rng.standard_normal(n) * 2.0 ** rng.integers(-2, 3, n)
    return encode(np.clip(x, -fmt.max_finite, fmt.max_finite), fmt)


def unit_with_settings(name, settings):
    """The preset `name` with the CLI's `--set KEY=VALUE` overrides (an unknown preset is reported as
    such; an unknown or bad setting names --set)."""
    from ..errors import NumsimError, bad
    from ..units import get_unit

    overrides = {}
    for item in settings:
        if "=" not in item:
            raise bad("--set", "KEY=VALUE", repr(item))
        k, v = item.split("=", 1)
        overrides[k.strip()] = _parse_value(v.strip())
    unit = get_unit(name)
    if overrides:
        try:
            unit = get_unit(unit, **overrides)
        except NumsimError as e:
            raise NumsimError(f"--set: {e}") from None
    return unit
