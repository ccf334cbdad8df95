#!/usr/bin/env bash
# The convolutional teacher that datasets/fashion-mnist-distilled.yaml and
# fashion-mnist-fast-distilled.yaml distil from: Benchmarks/peers/cnn_teacher.py
# (PyTorch, in the peers' venv) trained on /train of the split dataset, its
# epoch chosen on the stored /validation, its probabilities handed to `backprop
# teach` (which records the rows it trained on, from a run of zero epochs on
# the same file) as runs/cnn-teacher.h5, and the same teacher with the
# probabilities of every view of --augment shift=1,flip to
# runs/cnn-teacher-views.h5; its weights to runs/cnn-teacher.pt. With
# --ensemble, three such CNNs (seeds 0–2) and the mean of their probabilities
# instead, with the views of --augment flip (for
# datasets/fashion-mnist-best-distilled.yaml): runs/cnn-ensemble.h5 and
# runs/cnn-ensemble-views.h5. With --refit, the same single teacher (trained
# first if its weights are missing) labels the refit dataset
# datasets/fashion-mnist-refit.h5 (the split's /train, then its /validation:
# `backprop rechunk --refit`) with the views of --augment flip, for
# datasets/fashion-mnist-best-refit.yaml: runs/cnn-refit.h5 and
# runs/cnn-refit-views.h5. Skipped when the files are there.
#
#   bash Benchmarks/accuracy/cnn_teacher.sh [--ensemble | --refit]
set -euo pipefail
cd "$(dirname "$0")/../.."
case "$*" in
    "") name=cnn-teacher; flags=(--views shift=1,flip --save runs/cnn-teacher.pt) ;;
    --ensemble) name=cnn-ensemble; flags=(--members 3 --views flip) ;;
    --refit) name=cnn-refit ;;
    *) echo "cnn_teacher.sh: unknown arguments '$*' (give --ensemble, --refit or nothing)" >&2; exit 2 ;;
esac
source Benchmarks/accuracy/setup.sh
[ -f "runs/$name.h5" ] && [ -f "runs/$name-views.h5" ] && { [ "$name" != cnn-teacher ] || [ -f runs/cnn-teacher.pt ]; } && exit 0
peers_venv
# The rows (and stored split) that trained the teacher, as a run of zero epochs on them records them.
rm -rf runs/cnn-teacher-rows
"$backprop" train --data "$data" --epochs 0 --run-dir runs/cnn-teacher-rows --quiet > /dev/null
if [ "$name" = cnn-refit ]; then
    bash Benchmarks/accuracy/cnn_teacher.sh
    refit_data
    flags=(--load runs/cnn-teacher.pt --views flip)
    data=$data_refit
fi
"$venv/bin/python" Benchmarks/peers/cnn_teacher.py --backprop "$backprop" --data "$data" --trained-on runs/cnn-teacher-rows/model.h5 \
    --seed 0 "${flags[@]}" --output "runs/$name.h5" --views-output "runs/$name-views.h5" | tee "runs/$name.log"
