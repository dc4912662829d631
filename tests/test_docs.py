"""Every fenced ```python block in README.md and docs/*.md runs.

The blocks of one file run in order in one fresh namespace (a later block may use an earlier one's
names), in a temporary working directory.

Fragment convention: a block that is deliberately not runnable on its own (a signature, an excerpt of
a testbench, a snippet that needs the reader's model) is marked by an HTML comment on the line right
before its fence, with the reason:

    <!-- fragment: a signature, not a call -->
    ```python
    numsim.encode(values, fmt, ...)
    ```

The comment does not render; a fragment is not run. A block that
needs an optional dependency that is not installed (torch, matplotlib, ...) is skipped, with the
module's name, together with the rest of its file.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FRAGMENT = re.compile(r"^<!--\s*fragment:\s*(\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")


def python_blocks(path: Path):
    """(line of the fence, source, fragment reason or None) of every ```python block."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if m.group(1) == "python":
            prev = lines[i - 1] if i else ""
            reason = FRAGMENT.match(prev)
            blocks.append((i + 1, "\n".join(lines[i + 1:j]) + "\n", reason.group(1) if reason else None))
        i = j + 1
    return blocks


def _ids(path):
    return str(path.relative_to(ROOT))


def test_the_extractor_reads_fences_and_fragment_markers(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("text\n```python\na = 1\n```\n<!-- fragment: a signature -->\n```python\nf(x, ...)\n```\n"
                  "```bash\nls\n```\n")
    assert python_blocks(md) == [(2, "a = 1\n", None), (6, "f(x, ...)\n", "a signature")]


@pytest.mark.parametrize("path", [p for p in FILES if python_blocks(p)], ids=_ids)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"doc_{path.stem}"}
    for line, source, fragment in python_blocks(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if fragment:
            continue
        code = compile(source, where, "exec")
        try:
            exec(code, namespace)
        except ModuleNotFoundError as e:
            top = (e.name or "").split(".")[0]
            if top and top != "numsim":
                pytest.skip(f"{where} needs the optional {top}")
            raise
