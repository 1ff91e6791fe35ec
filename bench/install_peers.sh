#!/usr/bin/env bash
# Installs the peers the benchmarks compare normc against (idempotent).
#
#   bench/install_peers.sh            apt packages + pip venv
#   bench/install_peers.sh --apt-only only the Debian packages
#
# Debian packages (system python /usr/bin/python3):
#   libdnnl-dev (oneDNN 2.6, C++ benchmark), python3-torch (PyTorch 1.13),
#   python3-numpy, python3-matplotlib (chart), libbenchmark-dev (optional).
# PyPI packages go into a venv ($NORMC_BENCH_VENV, default build-bench/venv,
# ignored by git) so that their numpy does not clash with Debian's torch:
#   onnxruntime, onnx, halide, jax[cpu] (jax + jaxlib), iree-base-compiler,
#   iree-base-runtime, numpy.
# Each pip package is installed on its own: one that fails is reported and
# skipped, and the peer scripts mark that peer "not installed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NORMC_BENCH_VENV:-$ROOT/build-bench/venv}
APT_ONLY=0
[ "${1:-}" = "--apt-only" ] && APT_ONLY=1

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

APT_PACKAGES=(libdnnl-dev python3-torch python3-numpy python3-matplotlib
              python3-venv libbenchmark-dev g++ cmake ninja-build)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install_peers: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "install_peers: FAILED apt-get install ${missing[*]}" >&2
  fi
fi
((APT_ONLY)) && exit 0

if [ ! -x "$VENV/bin/python" ]; then
  echo "install_peers: creating venv $VENV"
  /usr/bin/python3 -m venv "$VENV" || { echo "install_peers: FAILED venv" >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
fi

failed=()
PIP_PACKAGES=(numpy onnx onnxruntime halide "jax[cpu]" iree-base-compiler
              iree-base-runtime)
for p in "${PIP_PACKAGES[@]}"; do
  if "$VENV/bin/python" -m pip install -q "$p" >/tmp/normc_pip_$$.log 2>&1; then
    echo "install_peers: pip $p ok"
  else
    echo "install_peers: FAILED pip install $p:" >&2
    tail -3 /tmp/normc_pip_$$.log >&2
    failed+=("$p")
  fi
done
rm -f /tmp/normc_pip_$$.log
"$VENV/bin/python" -m pip list 2>/dev/null |
  grep -iE '^(numpy|onnx|onnxruntime|halide|jax|jaxlib|iree-base-compiler|iree-base-runtime) ' |
  sed 's/^/install_peers:   /'
if ((${#failed[@]})); then
  echo "install_peers: not installed: ${failed[*]}"
fi
exit 0
