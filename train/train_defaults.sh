#!/usr/bin/env bash
# Reproduce the embedded default networks in models/ from scratch, with the exact
# settings used for the shipped ones (CPU, ~1 s per step on 2 cores).
#
#   bash train/train_defaults.sh                 # all styles (then the colorizer)
#   STEPS=2 IMAGE_SIZE=32 OUT=/tmp/d MODELS=/tmp/m bash train/train_defaults.sh starry_night   # smoke test
#
# bsds500/val is held out (validation grids and the quality figures of bench/quality.py).
# Each style trains into $OUT/<name> (checkpoints there: re-running resumes), then the
# publishable files are copied to $MODELS/<name>.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-outputs/defaults}
MODELS=${MODELS:-models}
STEPS=${STEPS:-400}
IMAGE_SIZE=${IMAGE_SIZE:-128}
STYLE_SIZE=${STYLE_SIZE:-256}
ARCH=${ARCH:-johnson-lite}
SEED=${SEED:-0}

# name|style file|display name|style weight
STYLES=(
  "starry_night|starry_night.jpg|The Starry Night (Vincent van Gogh)|5"
  "the_scream|the_scream.jpg|The Scream (Edvard Munch)|5"
  "great_wave|great_wave.jpg|The Great Wave off Kanagawa (Hokusai)|5"
  "composition_vii|composition_vii.jpg|Composition VII (Wassily Kandinsky)|5"
  "the_kiss|the_kiss.jpg|The Kiss (Gustav Klimt)|5"
)

wanted=("$@")
for spec in "${STYLES[@]}"; do
  IFS='|' read -r name file display style_weight <<<"$spec"
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " ${name} " ]]; then continue; fi
  echo "== ${name}: ${STEPS} steps of ${ARCH} at ${IMAGE_SIZE}px"
  accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1 --mixed_precision no --dynamo_backend no \
    train/train.py \
    --style "${DATA}/styles/${file}" --style_name "${display}" --style_size "${STYLE_SIZE}" \
    --data "${DATA}/photos/imagenet_sample" "${DATA}/photos/bsds500/train" \
    --validation_images "${DATA}/photos/bsds500/val" \
    --arch "${ARCH}" --image_size "${IMAGE_SIZE}" --batch_size 4 --lr 2e-3 \
    --content_weight 2 --style_weight "${style_weight}" --tv_weight 1 \
    --max_steps "${STEPS}" --checkpointing_steps 50 --checkpoints_total_limit 1 \
    --validation_steps 100 --log_steps 10 --seed "${SEED}" \
    --hub_model_id "fast-style/${name//_/-}" \
    --output_dir "${OUT}/${name}" --resume_from_checkpoint latest
  mkdir -p "${MODELS}/${name}"
  for f in README.md style.jpg samples.jpg; do
    cp "${OUT}/${name}/${f}" "${MODELS}/${name}/${f}"
  done
  # Weights stored as fp16 (half the size; outputs stay within 1/255 of fp32, see tests).
  python -c "import sys; from fst import FastStyle; FastStyle.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], half_precision=True)" \
    "${OUT}/${name}" "${MODELS}/${name}"
done
