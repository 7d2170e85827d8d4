#!/usr/bin/env bash
# The GPU check (issue 13): one command, under 8 minutes on one GPU, for the day a device is lent.
#
#   scripts/gpu_check.sh            # writes $OUT/gpu_report.md (OUT defaults to ./gpu_out)
#
# Runs with the machine's own python3/PyTorch and the sources in src/ (no install). Training data: the
# project's ../shared/data, or a copy in .gpu_data/ (ignored by git; carry it to a device machine, which gets
# only the repository):  mkdir -p .gpu_data && cp -r ../shared/data/{Set5,DIV2K-tiny-HR} .gpu_data/
# Steps, each under its own time limit so one hang cannot eat the rest:
#   1. the GPU: nvidia-smi, torch, a bf16 matmul rate
#   2. the CUDA-marked tests
#   3. inference speed and fidelity in fp32, fp16 and bf16, tile batch 1 and 4 (full-size RRDBNet)
#   4. a 1-process NCCL smoke run of torchrun training
#   5. 200 training iterations of the full-size RRDBNet at GT 128 in bf16 (it/s)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
REPORT="$OUT/gpu_report.md"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
DATA=.gpu_data
[ -d "$DATA/DIV2K-tiny-HR" ] || DATA=../shared/data
RUNS=$(mktemp -d)

step() {  # step TITLE SECONDS COMMAND...
  local title=$1 limit=$2; shift 2
  local start=$SECONDS
  { echo; echo "## $title"; echo; echo '```'; } >> "$REPORT"
  timeout "$limit" "$@" >> "$REPORT" 2>&1
  local rc=$?
  { echo '```'; echo; echo "exit status $rc, $((SECONDS - start)) s"; } >> "$REPORT"
  echo "$title: exit $rc, $((SECONDS - start)) s"
}

echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" > "$REPORT"
step "GPU and PyTorch" 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY - <<'PY'
import time, torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
for _ in range(3): a @ a
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): a @ a
torch.cuda.synchronize(); print(f'bf16 matmul: {10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12:.0f} TFLOP/s')
PY"
step "CUDA-marked tests" 150 "$PY" -m pytest -m cuda -q -p no:cacheprovider tests
step "Inference: precision and tile batch" 150 "$PY" benchmarks/bench_gpu_inference.py --size 512 --repeat 3
step "torchrun, 1 process, NCCL" 90 "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m esrgan train \
  configs/tiny_psnr.yaml --run-dir "$RUNS/nccl" train.device=cuda train.total_iters=20 train.val_every=20 \
  train.checkpoint_every=20 train.log_every=10 "data.hr_dirs=[$DATA/DIV2K-tiny-HR]" "data.val_hr_dirs=[$DATA/Set5]"
step "Full-size RRDBNet, GT 128, bf16, 200 iterations" 180 "$PY" -m esrgan train configs/esrgan_psnr_x4.yaml \
  --run-dir "$RUNS/full" train.device=cuda train.precision=bf16 train.total_iters=200 train.val_every=200 \
  train.checkpoint_every=200 train.log_every=50 data.gt_size=128 data.batch_size=16 data.num_workers=6 \
  data.cache_mb=2048 "data.hr_dirs=[$DATA/DIV2K-tiny-HR]" "data.val_hr_dirs=[$DATA/Set5]"
rm -rf "$RUNS"
echo "report: $REPORT"
