"""cffi out-of-line API build of numsim's C kernels (run by setup.py, never at import).

Every header `csrc/ns_*.h` carries its Python-visible declarations between
`/* CDEF BEGIN */` and `/* CDEF END */`, so the C ABI is declared once.
Set NUMSIM_SANITIZE=1 to build with AddressSanitizer + UndefinedBehaviorSanitizer, NUMSIM_PORTABLE_ONLY=1
to leave out every per-ISA kernel (the build a non-x86 CPU gets; ns_cpu_features() is then 0).
"""
import glob
import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")

_CDEF_RE = re.compile(r"/\* CDEF BEGIN \*/(.*?)/\* CDEF END \*/", re.S)


def _cdef_text():
    parts = []
    for header in sorted(glob.glob(os.path.join(CSRC, "ns_*.h"))):
        with open(header) as f:
            parts.extend(_CDEF_RE.findall(f.read()))
    return "\n".join(parts)


def _compile_args():
    args = ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
    link = ["-lpthread", "-lm"]
    if os.environ.get("NUMSIM_PORTABLE_ONLY"):
        args.append("-DNS_PORTABLE_ONLY")
    if os.environ.get("NUMSIM_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        args = [a for a in args if a != "-O3"] + ["-O1", "-g"] + san
        link += san
    return args, link


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
_args, _link = _compile_args()
ffibuilder.set_source(
    "numsim._kernels",
    '#include "numsim.h"',
    sources=sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(CSRC, "*.c"))),
    include_dirs=[CSRC],
    extra_compile_args=_args,
    extra_link_args=_link,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    sys.exit(0)
