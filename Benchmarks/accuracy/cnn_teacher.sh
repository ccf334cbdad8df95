#!/usr/bin/env bash
# The convolutional teacher that datasets/fashion-mnist-distilled.yaml and
# fashion-mnist-fast-distilled.yaml distil from: Benchmarks/peers/cnn_teacher.py
# (PyTorch, in the peers' venv) trained on /train of the split dataset, its
# epoch chosen on the stored /validation, written to runs/cnn-teacher.h5 with
# the fingerprint of the rows it trained on, as Backprop takes them (from a
# run of zero epochs on the same file), and the same teacher with the
# probabilities of every view of --augment shift=1,flip to
# runs/cnn-teacher-views.h5. With --ensemble, three such CNNs (seeds 0–2)
# and the mean of their probabilities instead, with the views of --augment
# flip (for datasets/fashion-mnist-best-distilled.yaml): runs/cnn-ensemble.h5
# and runs/cnn-ensemble-views.h5. Skipped when both files are there.
#
#   bash Benchmarks/accuracy/cnn_teacher.sh [--ensemble]
set -euo pipefail
cd "$(dirname "$0")/../.."
case "$*" in
    "") name=cnn-teacher; flags=(--views shift=1,flip) ;;
    --ensemble) name=cnn-ensemble; flags=(--members 3 --views flip) ;;
    *) echo "cnn_teacher.sh: unknown arguments '$*' (give --ensemble or nothing)" >&2; exit 2 ;;
esac
source Benchmarks/accuracy/setup.sh
[ -f "runs/$name.h5" ] && [ -f "runs/$name-views.h5" ] && exit 0
peers_venv
rm -rf runs/cnn-teacher-rows
"$backprop" train --data "$data" --epochs 0 --run-dir runs/cnn-teacher-rows --quiet > /dev/null
"$venv/bin/python" Benchmarks/peers/cnn_teacher.py --data "$data" --trained-on runs/cnn-teacher-rows/model.h5 \
    --seed 0 "${flags[@]}" --output "runs/$name.h5" --views-output "runs/$name-views.h5" | tee "runs/$name.log"
