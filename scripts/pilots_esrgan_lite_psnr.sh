#!/usr/bin/env bash
# The pilot runs that chose configs/esrgan_lite_psnr_x4.yaml (docs/models.md has the table). Each pilot is a
# short run with one cosine period annealed to its end and Set5 validated at its end; the pilots that change
# the model's cost got fewer iterations, so that every pilot took about the same wall time on 2 CPU cores.
# Run from the repository root; about 35 minutes in all on 2 cores. Results: runs/pilots.txt.
set -u
base=(optim.lr_g=5e-4 data.gt_size=64 data.batch_size=16 train.ema_decay=0.995 train.log_every=100)
pilot() {  # pilot NAME ITERATIONS OVERRIDES...
  local name=$1 iters=$2; shift 2
  local t0=$SECONDS
  esrgan train configs/esrgan_lite_psnr_x4.yaml --run-dir "runs/pilot_$name" --no-resume "${base[@]}" \
    train.total_iters="$iters" "schedule.periods=[$iters]" train.val_every="$iters" \
    train.checkpoint_every="$iters" "$@" > "runs/pilot_$name.log" 2>&1
  echo "$name iters=$iters wall=$((SECONDS - t0))s $* :: $(grep 'validation at' "runs/pilot_$name.log" | tail -1)" \
    | tee -a runs/pilots.txt
}
mkdir -p runs
pilot A_nf32_gt64_lr5e-4 1300
pilot B_nf32_gt64_lr1e-3 1300 optim.lr_g=1e-3
pilot C_nf32_gt128b4_lr5e-4 1300 data.gt_size=128 data.batch_size=4
pilot D_nf48_gt64_lr5e-4 800 model.num_feat=48
pilot E_nf32nb10_gt64_lr5e-4 800 model.num_block=10
pilot F_nf32_gt64_lr2e-3 1300 optim.lr_g=2e-3
