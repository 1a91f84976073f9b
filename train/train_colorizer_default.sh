#!/usr/bin/env bash
# Reproduce the embedded default colorizer (models/colorizer) with the exact settings used.
#   STEPS=2 IMAGE_SIZE=64 OUT=/tmp/c MODELS=/tmp/m bash train/train_colorizer_default.sh   # smoke test
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-outputs/defaults/colorizer}
MODELS=${MODELS:-models}
STEPS=${STEPS:-1500}
IMAGE_SIZE=${IMAGE_SIZE:-160}

accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1 \
  --mixed_precision no --dynamo_backend no \
  train/train_colorize.py \
  --data "${DATA}/photos/imagenet_sample" --arch iizuka-slim --image_size "${IMAGE_SIZE}" \
  --batch_size 8 --optimizer adam --lr 1e-3 --max_steps "${STEPS}" \
  --checkpointing_steps 100 --checkpoints_total_limit 1 --validation_steps 250 --log_steps 10 \
  --num_validation 8 --seed 0 --hub_model_id fast-style/colorizer \
  --output_dir "${OUT}" --resume_from_checkpoint latest
mkdir -p "${MODELS}/colorizer"
for f in README.md samples.jpg; do
  cp "${OUT}/${f}" "${MODELS}/colorizer/${f}"
done
# Weights stored as fp16 (half the size; see the tests for the tolerance).
python -c "import sys; from fst import Colorizer; Colorizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], half_precision=True)" \
  "${OUT}" "${MODELS}/colorizer"
