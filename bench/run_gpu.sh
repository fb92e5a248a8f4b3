#!/usr/bin/env bash
# The GPU throughput figures of bench/README.md, in one go (about 5 minutes on one H100).
# Usage: bash bench/run_gpu.sh [OUTPUT_DIR]   (default bench/results); needs a CUDA build of torch.
# Each run writes its own JSON (device name and date inside); a failing run does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench/results}"
mkdir -p "$OUT"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')" || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
status=0
run() {  # run NAME ARGS...
  local name="$1"; shift
  echo "== $name: python bench/throughput.py $*"
  python bench/throughput.py --device cuda "$@" --json "$OUT/throughput_${name}_cuda.json" || { echo "!! $name failed"; status=1; }
}
# The issue's target: slstt-b16-384, 11 frames, full fine-tuning (>= 120 clips/s train, >= 450 infer on H100).
run slstt-b16-384_full        --preset slstt-b16-384 --train_spatial full --steps 20 --warmup 3 --batch_size 16
run slstt-b16-384_full_compile --preset slstt-b16-384 --train_spatial full --steps 20 --warmup 5 --batch_size 16 --compile
# The official recipe (frozen backbone, LSTM) on our path, against the naive path with LSTM and with Mean.
run slstt-b16-384_frozen      --preset slstt-b16-384 --steps 20 --warmup 3 --batch_size 16
run slstt-b16-384_frozen_naive-mean --preset slstt-b16-384 --steps 20 --warmup 3 --batch_size 16 --naive_aggregation mean
run mer-b16-224               --preset mer-b16-224 --steps 20 --warmup 3 --batch_size 32
run tiny                      --preset tiny --steps 50 --warmup 5 --batch_size 64
exit $status
