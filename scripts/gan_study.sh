#!/usr/bin/env bash
# Issue 11's GAN-stage study: every arm fine-tunes esrgan_lite_psnr_x4 for the same number of iterations
# (configs/gan_study_base_x4.yaml), then both its EMA and its raw generator are scored on Set5/Set14 (PSNR,
# SSIM, NIQE) into runs/gan_study/ (scripts/gan_study_table.py makes the table).
# Run from the repository root with nothing else on the CPU; about 15-30 minutes an arm on 2 cores.
#   scripts/gan_study.sh              # every arm
#   scripts/gan_study.sh fm ldl       # some arms
set -u
RVGG="loss.perceptual.vgg_init=random loss.perceptual.weight=1 loss.perceptual.layers=[conv1_2,conv2_2,conv3_4,conv4_4,conv5_4] loss.perceptual.layer_weights=[0.1,0.1,1,1,1]"
declare -A ARMS=(
  [base]=""
  [fm]="loss.feature_matching.weight=1"
  [ldl]="loss.artifact.weight=1"
  [unet]="discriminator.arch=UNetDiscriminatorSN"
  [rvgg]="$RVGG"
  # stronger adversarial arms, after the first five: the paper's loss weights with the random VGG in place of
  # the ImageNet one, and Real-ESRGAN's (U-Net discriminator, GAN weight 0.1) with LDL
  [paper_rvgg]="$RVGG loss.pixel.weight=1e-2 loss.gan.weight=5e-3 loss.artifact.weight=1"
  [resr_ldl]="$RVGG discriminator.arch=UNetDiscriminatorSN loss.gan.weight=0.1 loss.artifact.weight=1"
  # after resr_ldl won: a stronger adversarial weight; and a Gram-matrix (texture) term on the random VGG's
  # features, whose statistics describe natural textures even with random weights (Ustyuzhaninov et al. 2017)
  [resr_ldl_g03]="$RVGG discriminator.arch=UNetDiscriminatorSN loss.gan.weight=0.3 loss.artifact.weight=1"
  [resr_ldl_style]="$RVGG discriminator.arch=UNetDiscriminatorSN loss.gan.weight=0.1 loss.artifact.weight=1 loss.perceptual.style_weight=400"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(base fm ldl unet rvgg paper_rvgg resr_ldl)
mkdir -p runs/gan_study
for arm in "${names[@]}"; do
  [ -n "${ARMS[$arm]+x}" ] || { echo "unknown arm $arm (known: ${!ARMS[*]})"; exit 2; }
  run="runs/gan_study/$arm"
  start=$SECONDS
  # shellcheck disable=SC2086  # the overrides are words
  esrgan train configs/gan_study_base_x4.yaml --run-dir "$run" ${ARMS[$arm]} > "$run.log" 2>&1 || { echo "$arm failed"; continue; }
  echo "$arm: $((SECONDS - start)) s" | tee -a runs/gan_study/wall.txt
  esrgan benchmark -m "$run/models/net_g_final.safetensors" -m bicubic -d Set5=../shared/data/Set5 \
    -d Set14=../shared/data/Set14 -o "runs/gan_study/$arm-bench" --overwrite -q > /dev/null
  # the raw generator too: over 1,200 steps the EMA (0.999) still holds ~30 % of the PSNR model
  python scripts/export_raw.py "$run" > /dev/null
  esrgan benchmark -m "$run/models/net_g_raw.safetensors" -d Set5=../shared/data/Set5 \
    -d Set14=../shared/data/Set14 -o "runs/gan_study/$arm-raw-bench" --overwrite -q > /dev/null
done
