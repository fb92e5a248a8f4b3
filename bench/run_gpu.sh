#!/usr/bin/env bash
# The GPU figures of bench/README.md, in one go: throughput (about 5 minutes on one H100) and the cached
# paper protocol (bench/paper_protocol.py --full_real; unmeasured so far, no GPU was lent to its issue).
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
# The paper's protocol (slstt-b16-384, 11 frames, frozen ViT, 40 epochs, LOSO) on a CASME II-sized synthetic set
# (234 clips, 26 folds), for real, with the feature store (the issue's target: <= 1 minute on one H100).
echo "== paper protocol: python bench/paper_protocol.py --full_real --mixed_precision bf16"
python bench/paper_protocol.py --full_real --mixed_precision bf16 --json "$OUT/paper_protocol_cuda.json" \
  || { echo "!! paper protocol failed"; status=1; }
exit $status
