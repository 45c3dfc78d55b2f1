#!/usr/bin/env bash
# One prepared check of a GPU machine, at most 8 minutes; what it measures: benchmarks/gpu_check.py.
#
#   bash benchmarks/gpu_check.sh              # results in $OUT (default gpu_check_out/): gpu_check.json,
#                                             # gpu_check.log, pytest.log
#   bash benchmarks/gpu_check.sh --dry-run    # the same on the CPU, shrunk (checks the script)
#
# Uses the machine's own torch: the package is put on PYTHONPATH, nothing is installed. Optional:
# REPRO_DATA=<folder with Tiny ImageNet> (else synthetic images of its size), GPU_CHECK_SECONDS (420; with the 60 s safety net, 8 min at most).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
export CUBLAS_WORKSPACE_CONFIG=":4096:8"  # deterministic cuBLAS (repro.train.determinism), set before CUDA starts
export OUT PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_SECONDS:-420}"

"$PY" -c "import torch, numpy, PIL, safetensors, filelock, scipy, hypothesis, tqdm, pytest" 2>"$OUT/gpu_check.log" || {
    echo "gpu_check: a package is missing (see $OUT/gpu_check.log); carry it as a wheel" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee -a "$OUT/gpu_check.log"
case " $* " in *" --dry-run "*) BUDGET="${GPU_CHECK_SECONDS:-150}" ;; esac
# the script keeps to its budget; the timeout is a safety net 60 s beyond it
timeout $((${BUDGET%.*} + 60)) "$PY" benchmarks/gpu_check.py --out "$OUT" --budget "$BUDGET" "$@" 2>&1 \
    | tee -a "$OUT/gpu_check.log"
