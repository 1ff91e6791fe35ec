#!/usr/bin/env bash
# Builds the GPU device-check kit on THIS machine (no GPU needed), for
# bench/gpu/run.sh to run on a machine with an NVIDIA GPU:
#
#   bench/gpu/prepare.sh [NORMC] [--out=DIR] [--archs=sm_80,sm_90] [--jobs=N]
#                        [--cpu-only]
#
#   NORMC      the normc compiler to use (default: $NORMC, else
#              <repo>/build/bin/normc); it must have --gpu-arch
#   --out      kit folder (default <repo>/build-gpu-kit; git ignores
#              /build-*/); its CMake build goes to <out>-cmake
#   --archs    GPU architectures of the PTX (default sm_80,sm_90)
#   --jobs     build parallelism (default 1: shared 2-core machines)
#   --cpu-only bundles without GPU code, to test the kit here with
#              `normc_gpu_check check --device=cpu` (run.sh then fails on a
#              GPU with "no GPU code")
#   --no-ptxas skip assembling the bundles' PTX with the CUDA toolkit's
#              ptxas (done when ptxas is found: $PTXAS, PATH or
#              /usr/local/cuda/bin), which catches PTX the driver would
#              reject before the GPU machine does, and reports registers
#              and spills
#
# The kit: normc_gpu_check + libnormc_runtime.so.0 (found through
# RUNPATH $ORIGIN), kernels/*.so (CPU code + PTX), specs/*.mlir, run.sh,
# peers_torch.py, report.py, README.md, KIT_INFO.json, prepare.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NORMC_BIN="${NORMC:-$ROOT/build/bin/normc}"
KIT="$ROOT/build-gpu-kit"
ARCHS=sm_80,sm_90
JOBS=1
CPU_ONLY=0
NO_PTXAS=0
for arg in "$@"; do
  case "$arg" in
    --out=*) KIT="${arg#--out=}" ;;
    --archs=*) ARCHS="${arg#--archs=}" ;;
    --jobs=*) JOBS="${arg#--jobs=}" ;;
    --cpu-only) CPU_ONLY=1 ;;
    --no-ptxas) NO_PTXAS=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "prepare.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) NORMC_BIN="$arg" ;;
  esac
done
case "$KIT" in /*) ;; *) KIT="$PWD/$KIT" ;; esac
BUILD="$KIT-cmake"
die() { echo "prepare.sh: $*" >&2; exit 1; }

# 1. The compiler must exist and know --gpu-arch.
[ -x "$NORMC_BIN" ] || die "no normc at $NORMC_BIN (build the project, or pass
the compiler's path as the first argument or in \$NORMC)"
if [ "$CPU_ONLY" = 0 ] && ! "$NORMC_BIN" --help 2>&1 | grep -q -- '--gpu-arch'; then
  die "$NORMC_BIN has no --gpu-arch option: it cannot put GPU code (PTX) in
bundles yet. Rebuild normc from a tree with the GPU lowering (docs/gpu.md),
or pass --cpu-only to build a kit without GPU code for testing here."
fi
GPU_FLAGS=()
[ "$CPU_ONLY" = 0 ] && GPU_FLAGS=(--gpu-arch="$ARCHS")

# 2. normc_gpu_check and the runtime, standalone (no LLVM/MLIR, no CUDA).
echo "== building normc_gpu_check in $BUILD"
GEN=()
command -v ninja > /dev/null && GEN=(-G Ninja)
mkdir -p "$BUILD"
cmake -S "$ROOT/bench/gpu" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  > "$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; die "cmake failed"; }
cmake --build "$BUILD" --target normc_gpu_check -j "$JOBS"

# 3. A fresh kit folder.
rm -rf "$KIT"
mkdir -p "$KIT/kernels" "$KIT/specs"
LOG="$KIT/prepare.log"
: > "$LOG"
cp "$BUILD/normc_gpu_check" "$KIT/"
RUNTIME_SONAME=$(readelf -d "$BUILD/normc_gpu_check" |
  sed -n 's/.*NEEDED.*\[\(libnormc_runtime[^]]*\)\].*/\1/p')
[ -n "$RUNTIME_SONAME" ] || die "normc_gpu_check does not link libnormc_runtime"
RUNTIME_FILE=$(find "$BUILD" -name "$RUNTIME_SONAME" | head -n 1)
[ -n "$RUNTIME_FILE" ] || die "cannot find $RUNTIME_SONAME under $BUILD"
cp -L "$RUNTIME_FILE" "$KIT/$RUNTIME_SONAME"
strip --strip-unneeded "$KIT/normc_gpu_check" "$KIT/$RUNTIME_SONAME" 2>/dev/null || true
for f in run.sh peers_torch.py report.py README.md; do
  cp "$ROOT/bench/gpu/$f" "$KIT/"
done
chmod +x "$KIT/run.sh" "$KIT/normc_gpu_check"

# 4. The kernels: one bundle per spec file, so that a spec the compiler
# rejects costs only its own kernels (normc_gpu_check reports them).
echo "== compiling the kit's specs with $NORMC_BIN ${GPU_FLAGS[*]:-(CPU only)}"
"$KIT/normc_gpu_check" specs "$KIT/specs" > /dev/null
FAILED=()
for spec in "$KIT"/specs/*.mlir; do
  stem=$(basename "$spec" .mlir)
  start=$SECONDS
  if "$NORMC_BIN" "$spec" "${GPU_FLAGS[@]}" --emit=shared \
       -o "$KIT/kernels/$stem.so" >> "$LOG" 2>&1; then
    printf '  %-22s %6s KiB  %3d s\n' "$stem.so" \
      $(( $(stat -c %s "$KIT/kernels/$stem.so") / 1024 )) $((SECONDS - start))
  else
    echo "  $stem.so FAILED (see $LOG)"
    echo "prepare.sh: normc failed on $spec" >> "$LOG"
    rm -f "$KIT/kernels/$stem.so"
    FAILED+=("$stem")
  fi
done

# 5. Assemble every bundle's PTX with ptxas, when the CUDA toolkit is here.
PTXAS=${PTXAS:-$(command -v ptxas || true)}
[ -z "$PTXAS" ] && [ -x /usr/local/cuda/bin/ptxas ] && PTXAS=/usr/local/cuda/bin/ptxas
if [ "$CPU_ONLY" = 0 ] && [ "$NO_PTXAS" = 0 ] && [ -n "$PTXAS" ]; then
  echo "== assembling the PTX with $PTXAS"
  TMP=$(mktemp -d)
  # The PTX of arch A is the bundle's NUL-terminated normc_gpu_ptx_A.
  python3 - "$KIT/kernels" "$TMP" "$ARCHS" <<'PY'
import ctypes, os, sys
kernels, out, archs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
for f in sorted(os.listdir(kernels)):
    if not f.endswith(".so"):
        continue
    lib = ctypes.CDLL(os.path.join(kernels, f))
    for a in archs:
        try:
            sym = ctypes.c_char.in_dll(lib, "normc_gpu_ptx_" + a)
        except ValueError:
            print(f"  {f}: no normc_gpu_ptx_{a} symbol")
            continue
        with open(os.path.join(out, f"{f[:-3]}.{a}.ptx"), "wb") as o:
            o.write(ctypes.string_at(ctypes.addressof(sym)))
PY
  for ptx in "$TMP"/*.ptx; do
    [ -e "$ptx" ] || continue
    name=$(basename "$ptx" .ptx)
    arch=${name##*.}
    if "$PTXAS" -arch="$arch" -v "$ptx" -o /dev/null > "$TMP/ptxas.log" 2>&1; then
      awk -v n="$name" '
        /Compiling entry/ { f++ }
        /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) if ($i == "Used" && $(i + 1) + 0 > r) r = $(i + 1) + 0 }
        /bytes spill stores/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) == "stores,") s += $i }
        END { printf "  %-28s %4d functions, up to %3d registers, %d bytes of spill stores\n", n, f, r, s }' "$TMP/ptxas.log"
    else
      echo "  $name: ptxas FAILED (see $LOG)"
      { echo "== ptxas -arch=$arch $name"; cat "$TMP/ptxas.log"; } >> "$LOG"
      FAILED+=("ptxas:$name")
    fi
  done
  rm -rf "$TMP"
fi

# 6. Self-test on this machine's CPU: every bundle opens in the kit's
# runtime and its kernels match the float64 reference on the small shapes.
echo "== self-test on the CPU (shapes up to 4096 elements)"
if "$KIT/normc_gpu_check" check --device=cpu --max-elements=4096 \
     > "$KIT/selftest.log" 2>&1; then
  tail -n 1 "$KIT/selftest.log"
else
  grep -v '^PASS ' "$KIT/selftest.log" | tail -n 20
  echo "prepare.sh: the CPU self-test failed (see $KIT/selftest.log)"
  FAILED+=(selftest)
fi

# 7. What was built from what.
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff-index --quiet HEAD -- 2>/dev/null || COMMIT="$COMMIT+changes"
cat > "$KIT/KIT_INFO.json" <<EOF
{"commit": "$COMMIT", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "host": "$(uname -n)", "normc": "$NORMC_BIN ($("$NORMC_BIN" --version 2>&1 | grep -m1 -i version | sed 's/^ *//; s/"//g'))",
 "gpu_archs": "$([ "$CPU_ONLY" = 1 ] && echo none || echo "$ARCHS")",
 "failed": "${FAILED[*]:-}"}
EOF

# 8. Size (the device tool carries at most 64 MiB) and C library needs.
BYTES=$(du -sb "$KIT" | cut -f1)
MIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1048576 }')
newest() {
  objdump -T "$KIT/normc_gpu_check" "$KIT/$RUNTIME_SONAME" "$KIT"/kernels/*.so 2>/dev/null |
    grep -o "$1_[0-9.]*" | sort -t. -k2,2n -k3,3n -u | tail -n 1
}
echo "== kit: $KIT, $MIB MiB; needs $(newest GLIBC) and $(newest GLIBCXX) or newer"
[ "$BYTES" -lt $((64 * 1048576)) ] || die "the kit is $MIB MiB: over the 64 MiB a device run can carry"
[ "$BYTES" -lt $((48 * 1048576)) ] || echo "prepare.sh: warning: the kit is $MIB MiB, close to the 64 MiB limit"

if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "prepare.sh: kit built, but these failed: ${FAILED[*]}; their kernels" \
       "will be reported as FAIL by the check"
  exit 1
fi
REL="${KIT#"$ROOT"/}"
echo "Run it on the GPU machine from the repository root, carrying $REL:"
echo "  bash $REL/run.sh"
