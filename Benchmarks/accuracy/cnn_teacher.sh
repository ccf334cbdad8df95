#!/usr/bin/env bash
# The convolutional teacher that datasets/fashion-mnist-distilled.yaml and
# fashion-mnist-fast-distilled.yaml distil from: Benchmarks/peers/cnn_teacher.py
# (PyTorch, in the peers' venv) trained on /train of the split dataset, its
# epoch chosen on the stored /validation, written to runs/cnn-teacher.h5 with
# the fingerprint of the rows it trained on, as Backprop takes them (from a
# run of zero epochs on the same file), and the same teacher with the
# probabilities of every view of --augment shift=1,flip to
# runs/cnn-teacher-views.h5 (for datasets/fashion-mnist-best-distilled.yaml).
# Skipped when both are there.
#
#   bash Benchmarks/accuracy/cnn_teacher.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/accuracy/setup.sh
[ -f runs/cnn-teacher.h5 ] && [ -f runs/cnn-teacher-views.h5 ] && exit 0
peers_venv
rm -rf runs/cnn-teacher-rows
"$backprop" train --data "$data" --epochs 0 --run-dir runs/cnn-teacher-rows --quiet > /dev/null
"$venv/bin/python" Benchmarks/peers/cnn_teacher.py --data "$data" --trained-on runs/cnn-teacher-rows/model.h5 \
    --seed "${1:-0}" --output runs/cnn-teacher.h5 --views shift=1,flip --views-output runs/cnn-teacher-views.h5 | tee runs/cnn-teacher.log
