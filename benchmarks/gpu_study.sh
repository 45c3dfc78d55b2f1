#!/usr/bin/env bash
# The `gpu` study on real Tiny ImageNet on one lent GPU machine, from an empty store: data moved there in pieces,
# checksummed, then trained (resuming from its store across calls) and reported into $OUT.
#
# Here (the checkout), once:
#   bash benchmarks/gpu_study.sh pieces               # .gpu-data/piece-1..4 (git-ignored), each under 60 MB
# There, one call per piece, each at once after the last (files outside the checkout survive while the machine
# stays warm, 30 s after a call), carrying .gpu-data/piece-K:
#   bash benchmarks/gpu_study.sh receive 1
#   bash benchmarks/gpu_study.sh receive 2
#   bash benchmarks/gpu_study.sh receive 3
#   bash benchmarks/gpu_study.sh receive 4 train      # last piece, checksums, then train within TRAIN_SECONDS
#   bash benchmarks/gpu_study.sh train                # again until it says "study complete": resumes, then reports
# Here, on the CPU, the whole path shrunk to a few images per class (checks the script end to end):
#   bash benchmarks/gpu_study.sh --dry-run
#
# Environment: STAGE (default $HOME/repro-gpu-study: data, cache, store, call log; outside the checkout),
# TRAIN_SECONDS (480: each call's training cap, leaving time to report within a 600 s call), STUDY_SETS
# (extra --set options; default `recipe.epochs=32 replicates=2`: the recipe the CPU study chose by its premise
# pilot, docs/frontier.md, on its first two replicates, r3 and r4, which keeps the study inside the 15 minutes
# of device time a session is lent, with the start and the data transfer), REPRO_COMMIT (the commit the
# checkout is at, for the record: the machine gets no .git). Uses the machine's own torch; the package is put on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="${PYTHON:-python3}"
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY="$ROOT/.venv/bin/python"  # a checkout with its own venv
SHARDS="${SHARDS:-../shared/data/tiny-imagenet-200}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CUBLAS_WORKSPACE_CONFIG=":4096:8"  # deterministic cuBLAS (repro.train.determinism), set before CUDA starts
STAGE="${STAGE:-$HOME/repro-gpu-study}"
OUT="${OUT:-$ROOT/gpu_study_out}"
TRAIN_SECONDS="${TRAIN_SECONDS:-480}"
STUDY_SETS="${STUDY_SETS:-recipe.epochs=32 replicates=2}"
PROFILE="${PROFILE:-gpu}"
GPUS="${GPUS:-1}"
PIECES=("train-0.tar.gz" "train-1.tar.gz" "train-2.tar.gz" "train-3.tar.gz val-and-meta.tar.gz SHA256SUMS")

say() { echo "gpu_study $(date -u +%T): $*"; }

pieces() {  # split the shards into pieces that travel one per call
    local dest="${1:-.gpu-data}" k=1
    for names in "${PIECES[@]}"; do
        mkdir -p "$dest/piece-$k"
        for f in $names; do cp "$SHARDS/$f" "$dest/piece-$k/"; done
        say "piece-$k: $names ($(du -sm "$dest/piece-$k" | cut -f1) MB)"
        k=$((k + 1))
    done
}

receive() {  # copy a carried piece out of the checkout, into the stage
    local k="$1" src="${2:-.gpu-data}/piece-$1"
    [ -d "$src" ] || { echo "gpu_study: $src is not here: carry .gpu-data/piece-$k in this call" >&2; exit 2; }
    mkdir -p "$STAGE/data"
    cp "$src"/* "$STAGE/data/"
    say "received piece-$k into $STAGE/data ($(ls "$STAGE/data" | wc -l) files so far)"
}

record() {  # one line per call: what ran, when, how long, where
    "$PY" - "$STAGE/calls.jsonl" "$@" <<'EOF'
import json, platform, sys, time
path, step, start, end, rc = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
try:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
except Exception:
    gpu = "unknown"
with open(path, "a") as f:
    f.write(json.dumps({"step": step, "start": start, "end": end, "seconds": end - start, "rc": rc, "gpu": gpu,
                        "host": platform.node(), "when": time.strftime("%F %T", time.gmtime(start))}) + "\n")
EOF
}

train() {
    local sets=() s
    for s in $STUDY_SETS; do sets+=(--set "$s"); done
    [ -f "$STAGE/data/SHA256SUMS" ] || { echo "gpu_study: no data in $STAGE/data: receive the 4 pieces first" >&2; exit 2; }
    if [ ! -f "$STAGE/data/.verified" ]; then
        (cd "$STAGE/data" && sha256sum -c SHA256SUMS) || { echo "gpu_study: a shard's checksum differs: send it again" >&2; exit 2; }
        touch "$STAGE/data/.verified"
    fi
    export REPRO_DATA="$STAGE/data" REPRO_CACHE="$STAGE/cache" REPRO_STORE="$STAGE/store"
    local args=(--profile "$PROFILE" --store "$STAGE/store" "${sets[@]}")
    [ "$GPUS" -gt 0 ] && args+=(--gpus "$GPUS")
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee -a "$OUT/gpu_study.log"
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout -s INT "$TRAIN_SECONDS" "$PY" -m repro.cli run "${args[@]}" 2>&1 | tee -a "$OUT/gpu_study.log"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    record train "$t0" "$t1" "$rc"
    "$PY" -m repro.cli plan "${args[@]}" --json > "$OUT/plan.json" 2>>"$OUT/gpu_study.log"
    local left
    left=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['to_train'])" "$OUT/plan.json" 2>/dev/null || echo "?")
    cp "$STAGE/calls.jsonl" "$OUT/calls.jsonl"
    if [ "$left" != "0" ]; then
        say "stopped after ${TRAIN_SECONDS}s with $left runs to train (rc $rc): call 'train' again at once"
        return 0
    fi
    # every run is in the store: the report trains nothing and judges them
    "$PY" -m repro.cli report "${args[@]}" --report-dir "$OUT/gpu-tiny-imagenet" 2>&1 | tee -a "$OUT/gpu_study.log"
    "$PY" - "$STAGE/calls.jsonl" "$OUT/gpu-tiny-imagenet/study_wall.json" "${REPRO_COMMIT:-unknown}" \
        "$PROFILE" "$STUDY_SETS" <<'EOF'
import json, sys
calls = [json.loads(line) for line in open(sys.argv[1])]
train = [c for c in calls if c["step"] == "train"]
json.dump({"training_wall_seconds": sum(c["seconds"] for c in train), "train_calls": len(train),
           "gpu": train[-1]["gpu"] if train else None, "commit": sys.argv[3], "profile": sys.argv[4],
           "sets": sys.argv[5].split(), "calls": calls}, open(sys.argv[2], "w"), indent=1)
EOF
    say "study complete: report in $OUT/gpu-tiny-imagenet"
}

dry_run() {  # the whole path on the CPU: pieces, receive, checksum, an interrupted train, the resume, the report
    local tmp
    tmp=$(mktemp -d)
    export STAGE="$tmp/stage" OUT="$tmp/out" GPUS=0
    export STUDY_SETS="${DRY_SETS:-replicates=1 train_per_class=12 val_per_class=2 recipe.epochs=1 recipe.evals=2}"
    mkdir -p "$STAGE/cache"  # the decoded images of the same shards, if this machine has them already
    [ -d "${REPRO_CACHE:-$HOME/.cache/repro}/datasets" ] && ln -s "${REPRO_CACHE:-$HOME/.cache/repro}/datasets" "$STAGE/cache/datasets"
    pieces "$tmp/pieces"
    for k in 1 2 3 4; do receive "$k" "$tmp/pieces"; done
    TRAIN_SECONDS="${DRY_FIRST_SECONDS:-15}" train
    TRAIN_SECONDS=1200 train
    [ -f "$OUT/gpu-tiny-imagenet/results.json" ] || { echo "gpu_study: dry run wrote no report" >&2; exit 1; }
    grep -h "resumed from the checkpoint\|start " "$STAGE"/store/runs/*/log.txt | head -3
    say "dry run complete in $tmp"
}

[ $# -gt 0 ] || { sed -n '2,22p' "$0"; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        pieces) pieces ;;
        receive) shift; receive "${1:?receive takes the piece number}" ;;
        train) train ;;
        --dry-run) dry_run ;;
        *) echo "gpu_study: unknown step $1 (pieces, receive K, train, --dry-run)" >&2; exit 2 ;;
    esac
    shift
done
