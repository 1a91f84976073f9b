#!/usr/bin/env bash
# Reproduce the embedded multi-style network models/multistyle_rt (the eight paintings of
# ../shared/data/styles in one johnson-rt network), with the exact settings used for the
# shipped one (CPU, one thread), and learn an add-on style on top of it.
#
#   bash train/train_multistyle.sh                        # the multi-style network
#   bash train/train_multistyle.sh addon new.jpg [NAME]   # an add-on style on models/multistyle_rt
#   STEPS=2 IMAGE_SIZE=32 OUT=/tmp/m MODELS=/tmp/models bash train/train_multistyle.sh   # smoke test
#
# Each training image gets one of the eight styles at random; the convolutions start from
# the webcam network models/starry_night_rt (same structure), every style's norm rows from
# its rows. bsds500/val is held out (validation grids, bench/multistyle.py's quality figures).
# Training runs in $OUT/<name> (checkpoints there: re-running resumes), then the publishable
# files go to $MODELS/multistyle_rt (weights as fp16, as the other defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-outputs/multistyle}
MODELS=${MODELS:-models}
STEPS=${STEPS:-1600}
ADDON_STEPS=${ADDON_STEPS:-300}
IMAGE_SIZE=${IMAGE_SIZE:-128}
STYLE_SIZE=${STYLE_SIZE:-256}
SEED=${SEED:-0}
LAUNCH=(accelerate launch --cpu --num_processes 1 --num_cpu_threads_per_process "${THREADS:-1}" --num_machines 1
        --mixed_precision no --dynamo_backend no train/train.py)
COMMON=(--data "${DATA}/photos/imagenet_sample" "${DATA}/photos/bsds500/train"
        --validation_images "${DATA}/photos/bsds500/val" --image_size "${IMAGE_SIZE}" --style_size "${STYLE_SIZE}"
        --content_weight 2 --style_weight 5 --tv_weight 1 --checkpointing_steps 50 --checkpoints_total_limit 1
        --log_steps 10 --seed "${SEED}" --resume_from_checkpoint latest)

# name|title|artist|copyright status|source of the file (facts from ../shared/data/README.md)
PAINTINGS=(
  "starry_night|The Starry Night (1889)|Vincent van Gogh (1853-1890)|public domain (the artist died over 100 years ago)|github.com/jcjohnson/neural-style, examples/inputs/starry_night_google.jpg (Google Art Project scan)"
  "the_scream|The Scream (1893)|Edvard Munch (1863-1944)|public domain in the US (published before 1930) and in life+70 countries|github.com/jcjohnson/fast-neural-style, images/styles/the_scream.jpg"
  "great_wave|The Great Wave off Kanagawa (c. 1831)|Katsushika Hokusai (1760-1849)|public domain (the artist died over 100 years ago)|github.com/iSach/clipmorph, training_data/styles/kanagawa.jpg"
  "composition_vii|Composition VII (1913)|Wassily Kandinsky (1866-1944)|public domain in the US (published before 1930) and in life+70 countries|github.com/jcjohnson/fast-neural-style, images/styles/composition_vii.jpg"
  "the_kiss|The Kiss (1907-1908)|Gustav Klimt (1862-1918)|public domain (the artist died over 100 years ago)|github.com/iSach/clipmorph, training_data/styles/klimt.jpg"
  "shipwreck_of_the_minotaur|The Wreck of a Transport Ship (c. 1810)|J. M. W. Turner (1775-1851)|public domain (the artist died over 100 years ago)|github.com/lengstrom/fast-style-transfer, examples/style/the_shipwreck_of_the_minotaur.jpg"
  "water_lilies_bridge|Bridge over a Pond of Water Lilies (1899)|Claude Monet (1840-1926)|public domain in the US and in life+70 countries|github.com/iSach/clipmorph, training_data/styles/monet.jpg"
  "udnie|Udnie (1913)|Francis Picabia (1879-1953)|public domain in the US (published before 1930) and in life+70 countries since 2024|github.com/jcjohnson/fast-neural-style, images/styles/udnie.jpg"
)

publish_locally() {  # out-folder model-folder: the Hub-ready files, weights as fp16
  local out=$1 model=$2
  mkdir -p "${model}"
  cp -r "${out}/README.md" "${out}/style.jpg" "${out}/samples.jpg" "${out}/styles" "${model}/"
  python -c "import sys; from fst import FastStyle; FastStyle.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], half_precision=True)" \
    "${out}" "${model}"
}

if [ "${1:-}" = addon ]; then
  image=${2:?usage: train_multistyle.sh addon IMAGE [NAME]}
  name=${3:-$(basename "${image%.*}")}
  echo "== add-on ${name}: ${ADDON_STEPS} steps on ${MODELS}/multistyle_rt"
  "${LAUNCH[@]}" --base "${MODELS}/multistyle_rt" --style "${image}" --style_names "${name}" \
    --batch_size 4 --lr 2e-2 --max_steps "${ADDON_STEPS}" --validation_steps 100 "${COMMON[@]}" \
    --output_dir "${OUT}/addon-${name}"
  exit 0
fi

files=() names=() titles=() artists=() licences=() sources=()
for spec in "${PAINTINGS[@]}"; do
  IFS='|' read -r name title artist licence source <<<"${spec}"
  files+=("${DATA}/styles/${name}.jpg") names+=("${name}") titles+=("${title}") artists+=("${artist}")
  licences+=("${licence}") sources+=("${source}")
done
echo "== multistyle_rt: ${#names[@]} styles, ${STEPS} steps of johnson-rt at ${IMAGE_SIZE}px"
"${LAUNCH[@]}" --style "${files[@]}" --style_names "${names[@]}" --style_name "Eight paintings" \
  --style_title "${titles[@]}" --style_artist "${artists[@]}" --style_license "${licences[@]}" \
  --style_source "${sources[@]}" --arch johnson-rt --init_from models/starry_night_rt \
  --batch_size 4 --lr 2e-3 --max_steps "${STEPS}" --validation_steps 200 "${COMMON[@]}" \
  --hub_model_id fast-style/multistyle-rt --output_dir "${OUT}/multistyle_rt"
publish_locally "${OUT}/multistyle_rt" "${MODELS}/multistyle_rt"
