#!/usr/bin/env bash
# normc set-up: install what is missing, configure, build, then run a job.
#
#   ./setup.sh demo    install + build + run the main job on a shipped example
#   ./setup.sh test    install + build + run every test suite (lit, ctest)
#   ./setup.sh build   install + build only
#
# Idempotent: installs only missing Debian packages (seconds when all are
# there), reuses the build directory ($NORMC_BUILD_DIR, default ./build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${NORMC_BUILD_DIR:-$ROOT/build}
JOBS=${NORMC_JOBS:-$(nproc)}
LLVM=/usr/lib/llvm-22

PACKAGES=(cmake ninja-build g++ python3 llvm-22-dev libmlir-22-dev mlir-22-tools
          llvm-22-tools clang-22 libgtest-dev libgmock-dev)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DMLIR_DIR=$LLVM/lib/cmake/mlir -DLLVM_EXTERNAL_LIT=$LLVM/bin/lit >/dev/null
  fi
  ninja -C "$BUILD" -j "$JOBS" >/dev/null || ninja -C "$BUILD" -j 1
}

# The main job on a shipped example: compile a spec with normc into an
# object and a header, link it into a small C app, run it. The app prints
# the largest error against a double-precision computation of its own.
demo() {
  local spec="$ROOT/examples/specs/transformer_norms.mlir" out="$BUILD/demo"
  mkdir -p "$out"
  echo "== normc $spec --emit=obj -o $out/transformer_norms.o"
  "$BUILD/bin/normc" "$spec" --emit=obj -o "$out/transformer_norms.o"
  echo "== normc $spec --emit=header -o $out/transformer_norms.h"
  "$BUILD/bin/normc" "$spec" --emit=header -o "$out/transformer_norms.h"
  grep -E '^int32_t [a-z]' "$out/transformer_norms.h"
  echo "== cc examples/direct/transformer_norms.c transformer_norms.o -o transformer_norms"
  cc -O2 -I"$out" "$ROOT/examples/direct/transformer_norms.c" "$out/transformer_norms.o" \
    -lm -o "$out/transformer_norms"
  echo "== $out/transformer_norms"
  "$out/transformer_norms"
}

# Runs lit and ctest; ends with one line "N passed, N failed" over all suites.
run_tests() {
  local lit_log="$BUILD/lit.log" ctest_log="$BUILD/ctest.log"
  local lit_rc=0 ctest_rc=0
  "$LLVM/bin/lit" -sv "$BUILD/test" 2>&1 | tee "$lit_log" || lit_rc=$?
  (cd "$BUILD" && ctest --output-on-failure -j "$JOBS") 2>&1 | tee "$ctest_log" || ctest_rc=$?
  local lit_pass lit_fail lit_skip ct_total ct_fail ct_skip
  # lit's summary lines look like "  Passed: 12 (100.00%)".
  lit_pass=$(awk -F'[:(]' '/^ *(Passed|Expectedly Failed) *:/ {s+=$2} END {print s+0}' "$lit_log")
  lit_skip=$(awk -F'[:(]' '/^ *(Unsupported|Skipped|Excluded) *:/ {s+=$2} END {print s+0}' "$lit_log")
  lit_fail=$(awk -F'[:(]' '/^ *(Failed|Unexpectedly Passed|Unresolved|Timed Out) *:/ {s+=$2} END {print s+0}' "$lit_log")
  ct_total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$ctest_log" | tail -1)
  ct_fail=$(sed -nE 's/.* ([0-9]+) tests failed out of.*/\1/p' "$ctest_log" | tail -1)
  ct_skip=$(grep -c '(Skipped)' "$ctest_log" || true)
  ct_total=${ct_total:-0}
  ct_fail=${ct_fail:-0}
  if [ "$ctest_rc" -ne 0 ] && [ "$ct_fail" -eq 0 ]; then ct_fail=1; fi
  if [ "$lit_rc" -ne 0 ] && [ "$lit_fail" -eq 0 ]; then lit_fail=1; fi
  echo "$((lit_pass + ct_total - ct_fail - ct_skip)) passed, $((lit_fail + ct_fail)) failed, $((lit_skip + ct_skip)) skipped"
  [ "$lit_rc" -eq 0 ] && [ "$ctest_rc" -eq 0 ]
}

cmd=${1:-demo}
case "$cmd" in
  demo) install_packages; build; demo ;;
  test) install_packages; build; run_tests ;;
  build) install_packages; build ;;
  *) echo "usage: $0 [demo|test|build]" >&2; exit 2 ;;
esac
