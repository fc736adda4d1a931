#!/usr/bin/env bash
# Set up capsafe in ./.venv (idempotent; a second run takes seconds).
#
#   bash scripts/setup.sh            # capsafe + test tools
#   bash scripts/setup.sh --tests    # also what the tests need beyond Python: chromium
#   CAPSAFE_TORCH="torch==2.5.1" bash scripts/setup.sh   # choose the torch build yourself
#
# torch is chosen for the machine before capsafe is installed, and pip keeps it:
# - with an NVIDIA GPU (nvidia-smi works): the registry's default torch (CUDA wheels);
# - without one: a CPU build, from a local wheel folder when pip is configured with one
#   (--find-links), else from PyTorch's CPU index, else the registry's default.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${CAPSAFE_VENV:-.venv}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${CAPSAFE_TORCH:-}" ]; then
    pip install -q "$CAPSAFE_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    pip install -q torch
  else
    echo "[setup] no NVIDIA GPU: installing a CPU build of torch" >&2
    local_torch="torch==${CAPSAFE_LOCAL_TORCH:-2.13.0}"
    probe=$(mktemp -d)
    if pip download -q --no-index --no-deps "$local_torch" -d "$probe" >/dev/null 2>&1; then
      pip install -q "$local_torch"   # pip's --find-links holds a CPU wheel of it
    else
      pip install -q torch --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple 2>/dev/null || pip install -q torch
    fi
    rm -rf "$probe"
  fi
fi
pip install -q -e ".[dev]"
if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null 2>&1; then
  # The report's browser tests run headless Chromium (Debian's package).
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing chromium for the browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
      || echo "[setup] WARNING: could not install chromium; the browser tests will not run" >&2
  else
    echo "[setup] WARNING: chromium is missing and cannot be installed here (needs root and" \
      "apt-get); the browser tests will not run" >&2
  fi
fi
echo "[setup] ready: $("$VENV/bin/python" -c 'import torch, capsafe; print("capsafe", capsafe.__version__, "torch", torch.__version__)')" >&2
