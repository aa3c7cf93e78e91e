#!/usr/bin/env bash
# One GPU check of neurodyn: no internet, about 9 min on one H100/H200. Prints one JSON object (last line)
# and writes benchmarks/results/gpu_check.json. See benchmarks/gpu_check.py for the sections.
#
# Usage (from anywhere; the repository is this script's parent folder):
#   bash benchmarks/gpu_check.sh                          # use the python already on PATH (torch with CUDA)
#   bash benchmarks/gpu_check.sh --wheels /path/wheels    # first install neurodyn[dev] from those wheels only
#   bash benchmarks/gpu_check.sh --python /opt/venv/bin/python
#   bash benchmarks/gpu_check.sh --cpu-dry-run            # test the script on a CPU (tiny sizes)
#
# --wheels DIR: a virtual environment is made in .gpu_venv (with the system site-packages visible, so a
# CUDA torch that is already installed is used), and `pip install --no-index --find-links DIR .[dev]`
# installs neurodyn and whatever the system lacks from DIR only (pip never reaches an index). Build a
# wheel folder on a machine with internet with, e.g.:
#   pip download --dest wheels ".[dev]" torch --index-url https://download.pytorch.org/whl/cu124 \
#       --extra-index-url https://pypi.org/simple
# Other options are passed to gpu_check.py (--budget-s, --skip, --lorenz-epochs, --out-dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELS=""
PASS=()
value() {  # the value of option $1 ($2: what it names), or one line and exit code 2 when it has none
  if [[ $# -lt 3 || -z "$3" ]]; then echo "gpu_check.sh: error: $1: expected $2" >&2; exit 2; fi
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) value "$1" "a folder of wheels" "${2-}"; WHEELS="$2"; shift 2 ;;
    --python) value "$1" "a Python interpreter" "${2-}"; PYTHON="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) PASS+=("$1"); shift ;;
  esac
done

cd "$ROOT"
START=$(date +%s)
if [[ -n "$WHEELS" ]]; then
  if [[ ! -d "$WHEELS" ]]; then echo "gpu_check.sh: --wheels $WHEELS: no such folder" >&2; exit 2; fi
  if [[ ! -x .gpu_venv/bin/python ]]; then
    "$PYTHON" -m venv --system-site-packages .gpu_venv
  fi
  PYTHON="$ROOT/.gpu_venv/bin/python"
  ISOLATION=()
  # Build neurodyn with the environment's setuptools when it is recent enough; otherwise pip builds in
  # isolation and takes setuptools>=77 from the wheel folder (add it there: pip download setuptools).
  if "$PYTHON" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null; then
    ISOLATION=(--no-build-isolation)
  fi
  PIP_NO_INDEX=1 "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" \
    ${ISOLATION[@]+"${ISOLATION[@]}"} "$ROOT[dev]" >&2
fi
if ! "$PYTHON" -c "import neurodyn, torch" 2>/dev/null; then
  echo "gpu_check.sh: $PYTHON cannot import neurodyn and torch (pass --wheels DIR or --python PY)" >&2
  exit 2
fi
echo "gpu_check.sh: setup took $(( $(date +%s) - START )) s with $("$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')" >&2
# Offline: no hub / dataset downloads; compiled kernels cached in the repository's ignored folders.
export HF_HUB_OFFLINE=1 PIP_NO_INDEX=1 PYTHONUNBUFFERED=1
exec "$PYTHON" "$ROOT/benchmarks/gpu_check.py" ${PASS[@]+"${PASS[@]}"}
