"""The reference firewall: numsim.reference is the executable specification the tests compare
production with, so production never imports it (else a shared bug would agree with itself).

- a static scan of every import statement under numsim/ (numsim/reference/ excepted), function-level
  and relative imports included, and of importlib.import_module / __import__ calls with a literal name;
- a poisoned import: a subprocess whose meta-path finder records and refuses numsim.reference, then
  imports every production module (those whose optional dependency is missing are skipped) and runs
  the cheap CLI commands, whose imports are lazy;
- production's exact decode (FloatFormat/IntFormat.exact_value, max_finite) equals the reference's,
  exhaustively for every format of 8 bits or fewer.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import numsim
from numsim.formats import REGISTRY, FloatFormat, IntFormat
from numsim.reference.formats import decode_exact, max_finite

PACKAGE = Path(numsim.__file__).resolve().parent
REFERENCE = "numsim.reference"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(path: Path, source: str | None = None):
    """(line, absolute module name) of every import in a file, relative imports resolved."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:                      # `from . import reference`
                yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                yield node.lineno, str(node.args[0].value)


def _production_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "reference" not in p.relative_to(PACKAGE).parts[:1])


def test_static_scan_no_production_module_imports_the_reference():
    files = _production_files()
    assert len(files) > 10                                # the scan sees the package
    hits = [f"{p.relative_to(PACKAGE.parent)}:{line} imports {name}"
            for p in files for line, name in _imported_names(p)
            if name == REFERENCE or name.startswith(REFERENCE + ".")]
    assert hits == [], "production imports the reference:\n" + "\n".join(hits)


def test_static_scan_sees_a_relative_reference_import():
    """The scanner itself: relative, function-level and dynamic imports of the reference are found."""
    src = ("def f():\n    from ..reference.formats import decode_exact\n"
           "def g():\n    from .. import reference\n"
           "def h():\n    importlib.import_module('numsim.reference.h100')\n")
    names = [name for _, name in _imported_names(PACKAGE / "commands" / "formats.py", src)]
    assert {"numsim.reference.formats", "numsim.reference", "numsim.reference.h100"} <= set(names)


POISONED = textwrap.dedent(r"""
    import importlib, importlib.abc, io, json, os, pkgutil, sys, contextlib
    attempts = []

    class Poison(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "numsim.reference" or name.startswith("numsim.reference."):
                import traceback
                attempts.append((name, "".join(traceback.format_stack(limit=8))))
                raise ImportError(f"production imported {name}", name=name)
            return None

    sys.meta_path.insert(0, Poison())
    import numsim
    imported, skipped = [], []

    def walk(pkg):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            if info.name in ("numsim.reference", "numsim.__main__"):   # the oracle; the CLI entry runs main()
                continue
            try:
                mod = importlib.import_module(info.name)
            except ImportError as e:
                missing = (e.name or "").split(".")[0]
                if missing and missing != "numsim":        # an optional dependency is not installed
                    skipped.append([info.name, str(e)])
                    continue
                raise
            imported.append(info.name)
            if info.ispkg:
                walk(mod)

    walk(numsim)
    from numsim.cli import main
    out = io.StringIO()
    for argv in json.loads(sys.argv[1]):
        with contextlib.redirect_stdout(out):
            rc = main(argv)
        assert rc in (0, None), (argv, rc)
    print(json.dumps({"attempts": attempts, "imported": imported, "skipped": skipped}))
""")

CLI_RUNS = [["formats"], ["formats", "fp8_e4m3fn"], ["formats", "int4"], ["formats", "fp4r4", "--phase", "odd"],
            ["unit"], ["unit", "int4_int32"], ["unit", "int4_fp4r4_fp16"]]


def test_poisoned_reference_is_never_imported(tmp_path):
    runs = CLI_RUNS + [["vectors", "int4_int32", "--count", "4", "--out", str(tmp_path)]]
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", POISONED, json.dumps(runs)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["attempts"] == [], "production imported the reference:\n" + "\n".join(
        f"{name}\n{stack}" for name, stack in res["attempts"])
    assert "numsim.formats" in res["imported"] and "numsim.cli" in res["imported"]
    for name, why in res["skipped"]:
        print(f"skipped {name}: {why}")


# ---- production's exact decode equals the reference's ---------------------------------------------

CUSTOM = [
    FloatFormat(3, 4, 3, specials="none"), FloatFormat(3, 4, 3, specials="ieee"),
    FloatFormat(3, 4, 3, specials="fn"), FloatFormat(3, 4, 4, specials="fnuz"),
    FloatFormat(4, 3, 7, subnormals=False, specials="fn"), FloatFormat(2, 1, 1, subnormals=False, specials="none"),
    FloatFormat(5, 2, 15, subnormals=False), FloatFormat(2, 0, 1, specials="none"), FloatFormat(3, 0, 2, specials="fnuz"),
    FloatFormat(2, 1, -3, specials="ieee"), FloatFormat(4, 1, 1, specials="fn"), FloatFormat(1, 2, 0, specials="none"),
    FloatFormat(3, 0, 3, radix=4, specials="none", r4_zero="none"),
    FloatFormat(3, 0, 3, radix=4, specials="none", r4_zero="none", phase=1),
    FloatFormat(4, 0, 9, radix=4, specials="none", phase=1), FloatFormat(7, 0, 60, radix=4, specials="none"),
    IntFormat(8, symmetric=True), IntFormat(5, signed=False), IntFormat(2),
]
SMALL = [f for f in REGISTRY.values() if f.bits <= 8] + CUSTOM


@pytest.mark.parametrize("fmt", SMALL, ids=str)
def test_exact_value_equals_the_reference_on_every_code(fmt):
    for code in range(2**fmt.bits):
        if fmt.kind == "int" and not fmt.valid_code(code):
            continue
        got, want = fmt.exact_value(code), decode_exact(code, fmt)
        assert type(got) is type(want) and got == want, (str(fmt), code, got, want)


@pytest.mark.parametrize("fmt", [f for f in list(REGISTRY.values()) + CUSTOM if f.kind == "float"], ids=str)
def test_max_finite_equals_the_reference(fmt):
    assert fmt.max_finite == float(max_finite(fmt))
    assert fmt.exact_value(fmt.max_finite_code) == max_finite(fmt)


def test_exact_value_of_wide_formats_equals_the_reference_on_a_sample():
    import numpy as np

    rng = np.random.default_rng(14)
    for fmt in [f for f in REGISTRY.values() if f.bits > 8]:
        codes = rng.integers(0, 2**fmt.bits, 2000, dtype=np.uint64).tolist() + [0, 2**fmt.bits - 1, 2 ** (fmt.bits - 1)]
        for code in codes:
            if fmt.kind == "int" and not fmt.valid_code(code):
                continue
            assert fmt.exact_value(code) == decode_exact(code, fmt), (str(fmt), code)


@pytest.mark.parametrize("fmt", [REGISTRY["fp8_e4m3fn"], REGISTRY["int4"]], ids=str)
def test_exact_value_rejects_a_code_outside_the_format(fmt):
    with pytest.raises(numsim.NumsimError, match="code"):
        fmt.exact_value(2**fmt.bits)
    with pytest.raises(numsim.NumsimError, match="code"):
        fmt.exact_value(1.5)
