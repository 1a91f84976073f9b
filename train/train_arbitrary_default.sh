#!/usr/bin/env bash
# Reproduce the embedded any-painting network models/arbitrary (CPU, one thread; see train/PLAN.md).
#
#   bash train/train_arbitrary_default.sh
#   STEPS=2 STAGE2_STEPS=2 IMAGE_SIZE=32 OUT=/tmp/a MODELS=/tmp/m bash train/train_arbitrary_default.sh  # smoke test
#
# Stage 1 trains the four decoders of `wct` (relu4_1 .. relu1_1) to invert VGG16 on 128 px crops.
# Stage 2 keeps the shipped levels (wct3: relu3_1, relu2_1, relu1_1) and trains the relu3_1 decoder
# alone for STAGE2_STEPS more (it lags the shallow ones; the relu4_1 one is not yet good enough to
# ship: train/PLAN.md has the measurements). Only photos are used (bsds500/val is held out);
# checkpoints make every stage resumable.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-outputs/arbitrary}
MODELS=${MODELS:-models}
STEPS=${STEPS:-500}
IMAGE_SIZE=${IMAGE_SIZE:-128}
STAGE2_STEPS=${STAGE2_STEPS:-1000}

run() {  # output_dir extra-args...
  local out=$1; shift
  accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1 \
    --mixed_precision no --dynamo_backend no train/train_arbitrary.py \
    --data "${DATA}/photos/imagenet_sample" "${DATA}/photos/bsds500/train" \
    --validation_images "${DATA}/photos/bsds500/val" --image_size "${IMAGE_SIZE}" --batch_size 8 \
    --checkpointing_steps 25 --checkpoints_total_limit 1 --validation_steps 100 --log_steps 10 --seed 0 \
    --hub_model_id fast-style/arbitrary --output_dir "${out}" --resume_from_checkpoint latest "$@"
}

echo "== stage 1: all four decoders, ${STEPS} steps"
run "${OUT}" --arch wct --lr 1e-3 --max_steps "${STEPS}"
echo "== stage 2: wct3, the relu3_1 decoder, ${STAGE2_STEPS} steps"
run "${OUT}-wct3" --init_from "${OUT}" --arch wct3 --train_levels relu3_1 --lr 1e-3 --seed 1 \
  --max_steps "${STAGE2_STEPS}"

mkdir -p "${MODELS}/arbitrary"
cp "${OUT}-wct3/README.md" "${OUT}-wct3/samples.jpg" "${MODELS}/arbitrary/"
# Weights stored as fp16 (half the size; outputs stay within a few 1/255 of fp32, see tests).
python -c "import sys; from fst import ArbitraryStyle; ArbitraryStyle.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], half_precision=True)" \
  "${OUT}-wct3" "${MODELS}/arbitrary"
