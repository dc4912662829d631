#!/usr/bin/env bash
# Obtain the cvfpu (FPnew) sources numsim verifies, at pinned commits, and copy the subset the test
# needs into tests/third_party/cvfpu/ (what the repository vendors: see its README.md).
#
#   tools/cvfpu/setup.sh                 # clone both repositories (needs network), copy, check
#   CVFPU_GIT_DIR=/path/cvfpu.git COMMON_CELLS_GIT_DIR=/path/common_cells.git tools/cvfpu/setup.sh
#                                        # from existing clones or bare mirrors (no network)
#   tools/cvfpu/setup.sh --check         # only verify the vendored files against SHA256SUMS
#
# cvfpu's top level refers to common_cells (a git submodule, pinned by cvfpu's commit below); only lzc,
# cf_math_pkg and the register macros are used by the FMA and cast units.
set -euo pipefail
CVFPU_URL=https://github.com/openhwgroup/cvfpu.git
CVFPU_COMMIT=0ad2cd7ff265fe6c9852faa87d296931e2cf380d          # 2024-10-23, "Fix handling of infinity in F2F conversions (#140)"
CC_URL=https://github.com/pulp-platform/common_cells.git
CC_COMMIT=6aeee85d0a34fedc06c14f04fd6363c9f7b4eeea             # v1.21.0, cvfpu's submodule pin
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=$ROOT/tests/third_party/cvfpu
CVFPU_FILES="LICENSE.solderpad README.license.md src/fpnew_pkg.sv src/fpnew_classifier.sv src/fpnew_rounding.sv
             src/fpnew_fma_multi.sv src/fpnew_cast_multi.sv"
CC_FILES="LICENSE src/lzc.sv src/cf_math_pkg.sv include/common_cells/registers.svh"

check() { (cd "$DEST" && sha256sum --quiet -c SHA256SUMS) && echo "cvfpu: vendored sources match SHA256SUMS"; }
if [ "${1:-}" = "--check" ]; then check; exit; fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gitdir() {   # $1 url, $2 commit, $3 env override -> a git dir holding the commit
    if [ -n "$3" ]; then echo "$3"; return; fi
    git clone -q --bare --filter=blob:none "$1" "$tmp/$(basename "$1")" && echo "$tmp/$(basename "$1")"
}
CVFPU_GIT=$(gitdir "$CVFPU_URL" "$CVFPU_COMMIT" "${CVFPU_GIT_DIR:-}")
CC_GIT=$(gitdir "$CC_URL" "$CC_COMMIT" "${COMMON_CELLS_GIT_DIR:-}")
test "$(git --git-dir="$CVFPU_GIT" ls-tree "$CVFPU_COMMIT" src/common_cells | awk '{print $3}')" = "$CC_COMMIT" \
    || { echo "cvfpu $CVFPU_COMMIT does not pin common_cells $CC_COMMIT" >&2; exit 1; }
mkdir -p "$DEST"
for f in $CVFPU_FILES; do
    mkdir -p "$DEST/$(dirname "$f")"; git --git-dir="$CVFPU_GIT" show "$CVFPU_COMMIT:$f" > "$DEST/$f"
done
for f in $CC_FILES; do
    mkdir -p "$DEST/common_cells/$(dirname "$f")"; git --git-dir="$CC_GIT" show "$CC_COMMIT:$f" > "$DEST/common_cells/$f"
done
check
