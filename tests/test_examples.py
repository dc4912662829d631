"""The examples run as scripts, from a clone (after `pip install .`) and from an install: each imports
the numsim the running Python has, never the checkout by path (an unbuilt checkout has no kernels)."""
import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.rglob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_does_not_touch_sys_path(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
            pytest.fail(f"{path.name}:{node.lineno} uses sys.path: examples import the installed numsim")


@pytest.mark.parametrize("script, needs", [("train_digits.py", ["torch", "sklearn"]), ("rtl/run.py", [])])
def test_example_script_starts_outside_the_checkout(script, needs, tmp_path):
    """`python examples/X.py --help` from another directory: the imports resolve (argparse then exits)."""
    for mod in needs:
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{script} needs the optional {mod}")
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "usage:" in proc.stdout
