#!/usr/bin/env bash
# Build Berkeley SoftFloat 3 + TestFloat 3 (testfloat_gen, testfloat_ver) from source trees you supply.
# Their code is not part of numsim and is never committed here.
#
#   tools/testfloat.sh SOFTFLOAT_SRC TESTFLOAT_SRC [BUILD_DIR]
#
# SOFTFLOAT_SRC / TESTFLOAT_SRC: checkouts of github.com/ucb-bar/berkeley-softfloat-3 and
# github.com/ucb-bar/berkeley-testfloat-3 (a bare git directory works too: its HEAD is exported).
# BUILD_DIR (default build/testfloat): the trees are copied there and built; the binaries end in
# BUILD_DIR/bin. SPECIALIZE_TYPE (default 8086-SSE, SoftFloat's own default) picks SoftFloat's
# NaN/tininess specialization; PLATFORM (default Linux-x86_64-GCC) its build directory.
# Then: PATH=BUILD_DIR/bin:$PATH pytest tests/test_testfloat.py   (or `numsim testfloat check`).
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
SF_SRC=$(cd "$1" && pwd)
TF_SRC=$(cd "$2" && pwd)
BUILD=${3:-build/testfloat}
PLATFORM=${PLATFORM:-Linux-x86_64-GCC}
SPECIALIZE_TYPE=${SPECIALIZE_TYPE:-8086-SSE}
JOBS=${JOBS:-2}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)

copy_tree() {  # copy a work tree, or export a bare git directory's HEAD
    local src=$1 dst=$2
    rm -rf "$dst"
    mkdir -p "$dst"
    if [ -d "$src/source" ]; then
        cp -R "$src/." "$dst/"
    elif git --git-dir="$src" rev-parse HEAD >/dev/null 2>&1; then
        git --git-dir="$src" archive HEAD | tar -x -C "$dst"
    else
        echo "testfloat.sh: $src is neither a source tree nor a git directory" >&2
        exit 2
    fi
}

copy_tree "$SF_SRC" "$BUILD/berkeley-softfloat-3"
copy_tree "$TF_SRC" "$BUILD/berkeley-testfloat-3"
TF_OPTS="-DFLOAT16 -DBFLOAT16 -DFLOAT64 -DEXTFLOAT80 -DFLOAT128 -DFLOAT_ROUND_ODD -DLONG_DOUBLE_IS_EXTFLOAT80"
if [ ! -f "$BUILD/berkeley-softfloat-3/source/$SPECIALIZE_TYPE/s_bf16UIToCommonNaN.c" ]; then
    # SoftFloat 3e's bf16 code exists only for 8086-SSE and RISCV: build the others without bf16
    sed -i -e '/bf16UIToCommonNaN\|commonNaNToBF16UI\|NormSubnormalBF16Sig\|normSubnormalBF16Sig/d' \
        -e '/roundPackToBF16\|bf16_isSignalingNaN\|bf16_to_f32\|f32_to_bf16/d' \
        "$BUILD/berkeley-softfloat-3/build/$PLATFORM/Makefile"
    TF_OPTS=${TF_OPTS/-DBFLOAT16 /}
fi
make -s -C "$BUILD/berkeley-softfloat-3/build/$PLATFORM" -j"$JOBS" SPECIALIZE_TYPE="$SPECIALIZE_TYPE"
make -s -C "$BUILD/berkeley-testfloat-3/build/$PLATFORM" -j"$JOBS" \
    SOFTFLOAT_DIR="$BUILD/berkeley-softfloat-3" TESTFLOAT_OPTS="$TF_OPTS" testfloat_gen testfloat_ver
mkdir -p "$BUILD/bin"
cp "$BUILD/berkeley-testfloat-3/build/$PLATFORM/testfloat_gen" "$BUILD/berkeley-testfloat-3/build/$PLATFORM/testfloat_ver" "$BUILD/bin/"
echo "$BUILD/bin"
