#!/usr/bin/env bash
# GPU device check: runs on the machine with the NVIDIA GPU, from the kit
# folder that bench/gpu/prepare.sh built (it holds this script):
#
#   bash build-gpu-kit/run.sh [--quick] [--skip-check] [--skip-bench]
#                             [--skip-torch] [--no-compile]
#
# Steps: machine info (nvidia-smi), `normc_gpu_check check` (every kernel vs
# the float64 reference), `normc_gpu_check bench` (GB/s and copy ratio),
# peers_torch.py (PyTorch eager and torch.compile), report.py (markdown
# table). Results go to $OUT if it is set (the device tool copies it back),
# else to <kit>/results: run.log, machine.txt, check.log, normc.jsonl,
# torch.jsonl, report.md. Each step has a time limit (seconds, environment):
# NORMC_KIT_CHECK_TIMEOUT (200), NORMC_KIT_BENCH_TIMEOUT (90),
# NORMC_KIT_TORCH_TIMEOUT (240; torch.compile variants stop being started
# after NORMC_KIT_COMPILE_BUDGET seconds, 150).
#
# Exit status: 0 when the check passed and every step ran, 2 when there is
# no usable GPU or driver, 1 otherwise.
set -u

case " $* " in *" -h "*|*" --help "*)
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0 ;;
esac
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RES="${OUT:-$KIT/results}"
mkdir -p "$RES"
rm -f "$RES"/{run.log,machine.txt,check.log,normc.jsonl,torch.jsonl,report.md}

main() {
QUICK=0 SKIP_CHECK=0 SKIP_BENCH=0 SKIP_TORCH=0 NO_COMPILE=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --skip-check) SKIP_CHECK=1 ;;
    --skip-bench) SKIP_BENCH=1 ;;
    --skip-torch) SKIP_TORCH=1 ;;
    --no-compile) NO_COMPILE=1 ;;
    *) echo "run.sh: unknown option $arg (see --help)"; return 2 ;;
  esac
done

CHECK_TIMEOUT=${NORMC_KIT_CHECK_TIMEOUT:-200}
BENCH_TIMEOUT=${NORMC_KIT_BENCH_TIMEOUT:-90}
TORCH_TIMEOUT=${NORMC_KIT_TORCH_TIMEOUT:-240}
COMPILE_BUDGET=${NORMC_KIT_COMPILE_BUDGET:-150}
CHECK_ARGS=() TORCH_ARGS=(--compile-budget-s="$COMPILE_BUDGET")
if [ "$QUICK" = 1 ]; then
  CHECK_ARGS+=(--max-elements=1048576)
  NO_COMPILE=1
fi
[ "$NO_COMPILE" = 1 ] && TORCH_ARGS+=(--impls=torch)
export PYTHONUNBUFFERED=1
BIN="$KIT/normc_gpu_check"
PY=${PYTHON:-python3}

step() { echo; echo "=== $* ($(date +%H:%M:%S))"; }
# timed NAME LIMIT CMD...: runs CMD under `timeout`, says how it ended.
timed() {
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  timeout -k 10 "$limit" "$@"
  rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "run.sh: $name stopped at its time limit ($limit s)"
  fi
  echo "run.sh: $name finished with status $rc after $((SECONDS - start)) s"
  return "$rc"
}

step "normc GPU kit: $KIT -> $RES"
[ -f "$KIT/KIT_INFO.json" ] && cat "$KIT/KIT_INFO.json"
echo "host $(uname -n), $(nproc) cores"

step "machine"
if command -v nvidia-smi >/dev/null 2>&1; then
  { nvidia-smi; echo;
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,clocks.sm,clocks.mem,power.limit,persistence_mode --format=csv
  } > "$RES/machine.txt" 2>&1 || true
  cat "$RES/machine.txt"
else
  echo "nvidia-smi not found" | tee "$RES/machine.txt"
fi

if [ ! -x "$BIN" ]; then
  echo "run.sh: $BIN is missing: build the kit with bench/gpu/prepare.sh"
  return 2
fi
# The program must at least start (libraries, C library version).
if ! "$BIN" check --list > /dev/null; then
  echo "run.sh: $BIN does not start here (see the error above)"
  return 2
fi

CHECK_RC=skipped BENCH_RC=skipped TORCH_RC=skipped
if [ "$SKIP_CHECK" = 0 ]; then
  step "check: every kernel, forward and backward, vs the float64 reference"
  # The program stops starting cases 20 s before the limit, so that its
  # summary is still written; `timeout` is the backstop.
  timed check "$CHECK_TIMEOUT" "$BIN" check --kit="$KIT" \
    --time-limit=$((CHECK_TIMEOUT > 40 ? CHECK_TIMEOUT - 20 : CHECK_TIMEOUT / 2)) \
    "${CHECK_ARGS[@]}" > "$RES/check.log" 2>&1
  CHECK_RC=$?
  grep -v '^PASS ' "$RES/check.log" | tail -n 60
  if [ "$CHECK_RC" = 2 ]; then
    echo "run.sh: no usable NVIDIA GPU or driver here (the runtime's message" \
         "is above); nothing else to run"
    return 2
  fi
fi

if [ "$SKIP_BENCH" = 0 ]; then
  step "bench: normc vs a device-to-device copy of the same bytes"
  timed bench "$BENCH_TIMEOUT" "$BIN" bench --kit="$KIT" \
    --json="$RES/normc.jsonl"
  BENCH_RC=$?
  [ "$BENCH_RC" = 2 ] && { echo "run.sh: no usable GPU or driver"; return 2; }
fi

if [ "$SKIP_TORCH" = 0 ]; then
  step "PyTorch peers (eager$([ "$NO_COMPILE" = 0 ] && echo ', torch.compile'))"
  timed torch "$TORCH_TIMEOUT" "$PY" "$KIT/peers_torch.py" \
    --json="$RES/torch.jsonl" "${TORCH_ARGS[@]}"
  TORCH_RC=$?
fi

step "report"
"$PY" "$KIT/report.py" --normc="$RES/normc.jsonl" --torch="$RES/torch.jsonl" \
  --check="$RES/check.log" --kit-info="$KIT/KIT_INFO.json" \
  --machine="$RES/machine.txt" -o "$RES/report.md" > /dev/null
REPORT_RC=$?
# The table last: the device tool returns the end of the output.
sed -n '/^## Bandwidth/,$p' "$RES/report.md" 2>/dev/null
grep -E '^\*\*[0-9]+ passed' "$RES/report.md" 2>/dev/null

echo
echo "run.sh: check $CHECK_RC, bench $BENCH_RC, torch $TORCH_RC," \
     "report $REPORT_RC (status; skipped = not run); results in $RES"
for rc in "$CHECK_RC" "$BENCH_RC" "$TORCH_RC" "$REPORT_RC"; do
  case "$rc" in 0|skipped) ;; *) return 1 ;; esac
done
return 0
}

# Everything also goes to run.log; the status is main's.
main "$@" 2>&1 | tee "$RES/run.log"
exit "${PIPESTATUS[0]}"
