#!/usr/bin/env bash
# Reproduce the embedded default networks in models/ from scratch, with the exact
# settings used for the shipped ones (CPU, one thread per run; see train/PLAN.md).
#
#   bash train/train_defaults.sh                 # all styles and the webcam networks
#   bash train/train_defaults.sh starry_night    # one style (and its webcam network, starry_night_rt)
#   STEPS=2 STAGE2_STEPS=2 IMAGE_SIZE=32 STAGE2_SIZE=32 OUT=/tmp/d MODELS=/tmp/m \
#       bash train/train_defaults.sh starry_night  # smoke test
#   FROM_SHIPPED=1 STAGE2_STEPS=300 bash train/train_defaults.sh the_scream   # stage 2 only, from models/
#
# Two stages per style: 400 steps at 128 px crops (batch 4), then (the steps, layer weights
# and content weight of each style below; STAGE2_STEPS=N gives every named style N) more at
# 256 px crops (batch 2) with the deeper style layers weighted up (1, 1, 2, 4) and a stronger
# style weight: that stage is what brings the painting's larger structures in.
# The webcam networks: stage 1 with 3x the steps (or warm-started from another webcam network),
# then the same stage 2.
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
STAGE2_STEPS=${STAGE2_STEPS:-}      # set: that many stage-2 steps for every style named
STAGE2_SIZE=${STAGE2_SIZE:-256}
STAGE2_STYLE_WEIGHT=${STAGE2_STYLE_WEIGHT:-10}
STAGE2_LAYER_WEIGHTS=${STAGE2_LAYER_WEIGHTS:-}   # set: these stage-2 layer weights for every style named
STAGE2_CONTENT_WEIGHT=${STAGE2_CONTENT_WEIGHT:-} # set: this stage-2 content weight for every style named
FROM_SHIPPED=${FROM_SHIPPED:-0}

# name|style file|display name|style weight|stage-2 steps of the shipped network (0: none yet)|
# stage-2 style layer weights (relu1_2 relu2_2 relu3_3 relu4_3; default 1 1 2 4)|stage-2 content weight (default 2)
STYLES=(
  "starry_night|starry_night.jpg|The Starry Night (Vincent van Gogh)|5|400"
  "the_scream|the_scream.jpg|The Scream (Edvard Munch)|5|300|1 1 2 4|3"
  "great_wave|great_wave.jpg|The Great Wave off Kanagawa (Hokusai)|5|300"
  "composition_vii|composition_vii.jpg|Composition VII (Wassily Kandinsky)|5|500"
  "the_kiss|the_kiss.jpg|The Kiss (Gustav Klimt)|5|300|1 1 1 1"
)

# Where each painting comes from, for the model card (facts from ../shared/data/README.md):
# title|artist|copyright status|source of the file
declare -A PROVENANCE=(
  [starry_night.jpg]="The Starry Night (1889)|Vincent van Gogh (1853-1890)|public domain (the artist died over 100 years ago)|github.com/jcjohnson/neural-style, examples/inputs/starry_night_google.jpg (Google Art Project scan)"
  [the_scream.jpg]="The Scream (1893)|Edvard Munch (1863-1944)|public domain in the US (published before 1930) and in life+70 countries|github.com/jcjohnson/fast-neural-style, images/styles/the_scream.jpg"
  [great_wave.jpg]="The Great Wave off Kanagawa (c. 1831)|Katsushika Hokusai (1760-1849)|public domain (the artist died over 100 years ago)|github.com/iSach/clipmorph, training_data/styles/kanagawa.jpg"
  [composition_vii.jpg]="Composition VII (1913)|Wassily Kandinsky (1866-1944)|public domain in the US (published before 1930) and in life+70 countries|github.com/jcjohnson/fast-neural-style, images/styles/composition_vii.jpg"
  [the_kiss.jpg]="The Kiss (1907-1908)|Gustav Klimt (1862-1918)|public domain (the artist died over 100 years ago)|github.com/iSach/clipmorph, training_data/styles/klimt.jpg"
)

# Webcam networks (johnson-rt): trained as <name>_rt; the catalogue's "webcam" field points
# the style's entry at it, and the app's webcam tab uses it on CPU. Stage 1 from scratch takes
# 3x the steps of a style's; a network warm-started from another style's webcam network (a
# painting changes what the network paints, not how it sees) takes RT_WARM_STEPS.
# name|stage-2 steps of the shipped network (0: none yet; the style's layer weights)|
# webcam network it starts from (empty: from scratch; it must come earlier in this list)|stage-2 content weight
RT_STYLES=("starry_night|300||3" "the_scream|300||3" "great_wave|300||3" "composition_vii|300|starry_night_rt|2"
           "the_kiss|300|starry_night_rt|2")
RT_STEPS=${RT_STEPS:-$((STEPS * 3))}
RT_WARM_STEPS=${RT_WARM_STEPS:-$((STEPS * 3 / 2))}
RT_STAGE2_STEPS=${RT_STAGE2_STEPS:-${STAGE2_STEPS}}   # set: that many stage-2 steps for every webcam network named

train_one() {  # name file display style_weight arch steps [stage: 1|2] [stage-2 layer weights] [stage-2 content weight]
  local name=$1 file=$2 display=$3 style_weight=$4 arch=$5 steps=$6 stage=${7:-1} layer_weights=${8:-1 1 2 4}
  local content_weight=2
  local title artist licence source
  local size=${IMAGE_SIZE} batch=4 lr=2e-3 out="${OUT}/${name}" extra=()
  if [ -n "${WARM_START:-}" ]; then extra=(--init_from "${MODELS}/${WARM_START}"); fi
  if [ "${stage}" = 2 ]; then
    size=${STAGE2_SIZE} batch=2 lr=1e-3 style_weight=${STAGE2_STYLE_WEIGHT} out="${OUT}/${name}-stage2"
    content_weight=${9:-2}
    local start="${OUT}/${name}"
    [ "${FROM_SHIPPED}" = 1 ] && start="models/${name}"
    # shellcheck disable=SC2206  # the weights are meant to split into words
    extra=(--init_from "${start}" --style_layer_weights ${layer_weights})
  fi
  IFS='|' read -r title artist licence source <<<"${PROVENANCE[${file}]}"
  echo "== ${name}: stage ${stage}, ${steps} steps of ${arch} at ${size}px"
  accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1 --mixed_precision no --dynamo_backend no \
    train/train.py \
    --style "${DATA}/styles/${file}" --style_name "${display}" --style_size "${STYLE_SIZE}" \
    --style_title "${title}" --style_artist "${artist}" --style_license "${licence}" --style_source "${source}" \
    --data "${DATA}/photos/imagenet_sample" "${DATA}/photos/bsds500/train" \
    --validation_images "${DATA}/photos/bsds500/val" \
    --arch "${arch}" --image_size "${size}" --batch_size "${batch}" --lr "${lr}" \
    --content_weight "${content_weight}" --style_weight "${style_weight}" --tv_weight 1 "${extra[@]}" \
    --max_steps "${steps}" --checkpointing_steps 50 --checkpoints_total_limit 1 \
    --validation_steps 100 --log_steps 10 --seed "${SEED}" \
    --hub_model_id "fast-style/${name//_/-}" \
    --output_dir "${out}" --resume_from_checkpoint latest
  mkdir -p "${MODELS}/${name}"
  for f in README.md style.jpg samples.jpg; do
    cp "${out}/${f}" "${MODELS}/${name}/${f}"
  done
  # Weights stored as fp16 (half the size; outputs stay within 1/255 of fp32, see tests).
  python -c "import sys; from fst import FastStyle; FastStyle.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], half_precision=True)" \
    "${out}" "${MODELS}/${name}"
}

rt_spec() {  # name -> "stage-2 steps|start network|stage-2 content weight" of its webcam network; fails when it has none
  local spec rt_name steps start content
  for spec in "${RT_STYLES[@]}"; do
    IFS='|' read -r rt_name steps start content <<<"${spec}"
    if [ "${rt_name}" = "$1" ]; then echo "${RT_STAGE2_STEPS:-${steps}}|${start}|${content}"; return 0; fi
  done
  return 1
}

wanted=("$@")
for spec in "${STYLES[@]}"; do
  IFS='|' read -r name file display style_weight stage2_steps layer_weights content_weight <<<"$spec"
  stage2_steps=${STAGE2_STEPS:-${stage2_steps}}
  layer_weights=${STAGE2_LAYER_WEIGHTS:-${layer_weights:-1 1 2 4}}
  if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " =~ " ${name} " ]]; then
    [ "${FROM_SHIPPED}" = 1 ] || train_one "${name}" "${file}" "${display}" "${style_weight}" "${ARCH}" "${STEPS}"
    if [ "${stage2_steps}" -gt 0 ]; then
      train_one "${name}" "${file}" "${display}" "${style_weight}" "${ARCH}" "${stage2_steps}" 2 "${layer_weights}" \
        "${STAGE2_CONTENT_WEIGHT:-${content_weight:-2}}"
    fi
  fi
  rt=$(rt_spec "${name}") || continue   # no webcam network for this style
  IFS='|' read -r rt_stage2_steps rt_start rt_content_weight <<<"${rt}"
  if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " =~ " ${name} " ]] || [[ " ${wanted[*]} " =~ " ${name}_rt " ]]; then
    if [ "${FROM_SHIPPED}" != 1 ] && [ -n "${rt_start}" ]; then
      WARM_START=${rt_start} train_one "${name}_rt" "${file}" "${display}" "${style_weight}" johnson-rt "${RT_WARM_STEPS}"
    elif [ "${FROM_SHIPPED}" != 1 ]; then
      train_one "${name}_rt" "${file}" "${display}" "${style_weight}" johnson-rt "${RT_STEPS}"
    fi
    if [ "${rt_stage2_steps}" -gt 0 ]; then
      train_one "${name}_rt" "${file}" "${display}" "${style_weight}" johnson-rt "${rt_stage2_steps}" 2 \
        "${layer_weights}" "${STAGE2_CONTENT_WEIGHT:-${rt_content_weight:-2}}"
    fi
  fi
done
