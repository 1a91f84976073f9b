#!/usr/bin/env bash
# Reproduce the embedded default networks in models/ from scratch, with the exact
# settings used for the shipped ones (CPU, ~1 s per step on 2 cores).
#
#   bash train/train_defaults.sh                 # all styles and the webcam networks
#   bash train/train_defaults.sh starry_night    # one style (and its webcam network, starry_night_rt)
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

# Webcam networks (johnson-rt, 3x the steps): trained as <name>_rt; the catalogue's
# "lite" field points the style's entry at it, and the app's webcam tab uses it on CPU.
RT_STYLES=(starry_night the_scream great_wave)
RT_STEPS=${RT_STEPS:-$((STEPS * 3))}

train_one() {  # name file display style_weight arch steps
  local name=$1 file=$2 display=$3 style_weight=$4 arch=$5 steps=$6
  echo "== ${name}: ${steps} steps of ${arch} at ${IMAGE_SIZE}px"
  accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1 --mixed_precision no --dynamo_backend no \
    train/train.py \
    --style "${DATA}/styles/${file}" --style_name "${display}" --style_size "${STYLE_SIZE}" \
    --data "${DATA}/photos/imagenet_sample" "${DATA}/photos/bsds500/train" \
    --validation_images "${DATA}/photos/bsds500/val" \
    --arch "${arch}" --image_size "${IMAGE_SIZE}" --batch_size 4 --lr 2e-3 \
    --content_weight 2 --style_weight "${style_weight}" --tv_weight 1 \
    --max_steps "${steps}" --checkpointing_steps 50 --checkpoints_total_limit 1 \
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
}

wanted=("$@")
for spec in "${STYLES[@]}"; do
  IFS='|' read -r name file display style_weight <<<"$spec"
  if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " =~ " ${name} " ]]; then
    train_one "${name}" "${file}" "${display}" "${style_weight}" "${ARCH}" "${STEPS}"
  fi
  if [[ " ${RT_STYLES[*]} " =~ " ${name} " ]] && \
     { [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " =~ " ${name} " ]] || [[ " ${wanted[*]} " =~ " ${name}_rt " ]]; }; then
    train_one "${name}_rt" "${file}" "${display}" "${style_weight}" johnson-rt "${RT_STEPS}"
  fi
done
