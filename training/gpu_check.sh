#!/usr/bin/env bash
# A short QLoRA run on one GPU, printing samples/s and peak memory as one JSON line.
#
# The GPU image has torch, transformers and peft, but maybe not soundfile, pyloudnorm, scipy or
# bitsandbytes, which faderwise's modules import. Put their wheels in .wheels/ beforehand (on a
# machine with the index: pip download soundfile pyloudnorm scipy bitsandbytes future -d .wheels)
# and carry that folder; this script installs them from there, offline. Without bitsandbytes the
# check runs bf16 LoRA instead and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .wheels ]; then
    python -m pip install -q --no-index --find-links .wheels soundfile pyloudnorm scipy bitsandbytes 2>/dev/null \
        || python -m pip install -q --no-index --find-links .wheels soundfile pyloudnorm scipy
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for size in small medium; do
    python -m faderwise.training.gpu_check --size "$size" --steps "${STEPS:-20}" --device cuda
done
