#!/usr/bin/env bash
# Reproduce the embedded default colorizer (models/colorizer) with the exact settings used:
# the vgg16-color network (frozen ImageNet VGG16 encoder, colour classes), its branches trained
# on cached encoder features of the ImageNet sample and BSDS500 train (bsds500/val is held out).
# Needs the VGG16 weights once: `fst prepare-vgg`. About 40 minutes on one CPU thread.
#   STEPS=2 IMAGE_SIZE=64 OUT=/tmp/c MODELS=/tmp/m bash train/train_colorizer_default.sh   # smoke test
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-outputs/defaults/colorizer}
MODELS=${MODELS:-models}
STEPS=${STEPS:-600}
IMAGE_SIZE=${IMAGE_SIZE:-224}

accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1 \
  --mixed_precision no --dynamo_backend no \
  train/train_colorize.py \
  --data "${DATA}/photos/imagenet_sample" "${DATA}/photos/bsds500/train" --arch vgg16-color \
  --image_size "${IMAGE_SIZE}" --batch_size 16 --optimizer adam --lr 1e-3 --max_steps "${STEPS}" \
  --classification_weight 0.03 --max_side 512 --feature_cache "${OUT}/features.safetensors" \
  --checkpointing_steps 100 --checkpoints_total_limit 1 --validation_steps 300 --log_steps 10 \
  --num_validation 24 --seed 0 --hub_model_id fast-style/colorizer \
  --output_dir "${OUT}" --resume_from_checkpoint latest
mkdir -p "${MODELS}/colorizer"
for f in README.md samples.jpg; do
  cp "${OUT}/${f}" "${MODELS}/colorizer/${f}"
done
# Weights stored as fp16 (half the size; see the tests for the tolerance).
python -c "import sys; from fst import Colorizer; Colorizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], half_precision=True)" \
  "${OUT}" "${MODELS}/colorizer"
