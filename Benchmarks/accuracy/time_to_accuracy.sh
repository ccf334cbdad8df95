#!/usr/bin/env bash
# Time to accuracy on this machine, one run at a time on every core: the
# default run, the fast recipe (datasets/fashion-mnist-fast.yaml), the same
# distilled from the CNN teacher (fashion-mnist-fast-distilled.yaml; the
# teacher is made first, by cnn_teacher.sh, and timed apart), the best
# distilled recipe (fashion-mnist-best-distilled.yaml, the same teacher with its views), the teacher
# recipe (datasets/fashion-mnist-teacher.yaml: the best recipe's model at 80
# epochs), the fast and the best distilled recipes refit on all 60,000
# training rows (fashion-mnist-fast-refit.yaml, fashion-mnist-best-refit.yaml,
# with cnn_teacher.sh --refit's teacher), each with the test split read every epoch (reported, choosing
# nothing), then PyTorch on the fast recipe and on the distilled one
# (Benchmarks/peers/torch_recipe.py, installed with the peers), and the table
# of Benchmarks/accuracy/time_to_accuracy.py.
#
#   bash Benchmarks/accuracy/time_to_accuracy.sh [--no-teacher] [--no-pytorch]
# (--no-teacher: no 80-epoch teacher-recipe row; --no-pytorch: no PyTorch rows, nor a new CNN teacher)
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/accuracy/setup.sh
out=runs/time-to-accuracy
mkdir -p "$out"
lscpu | grep -E "Model name|^CPU\(s\)" || true
run() {  # name, flags…
    local name=$1; shift
    rm -rf "$out/$name"
    "$backprop" train --report-test every-epoch --run-dir "$out/$name" --quiet "$@"
}
refit_data
run default --data "$data"
run fast --config datasets/fashion-mnist-fast.yaml
run fast-refit --config datasets/fashion-mnist-fast-refit.yaml
files=("$out"/default/metrics.csv "$out"/fast/metrics.csv "$out"/fast-refit/metrics.csv)
# The CNN teacher is PyTorch's: without PyTorch, the distilled row needs a teacher made before.
if [[ " $* " != *" --no-pytorch "* ]] || { [ -f runs/cnn-teacher-views.h5 ] && [ -f runs/cnn-refit-views.h5 ]; }; then
    bash Benchmarks/accuracy/cnn_teacher.sh --refit
    run fast-distilled --config datasets/fashion-mnist-fast-distilled.yaml
    run best-distilled --config datasets/fashion-mnist-best-distilled.yaml
    run best-refit --config datasets/fashion-mnist-best-refit.yaml
    files+=("$out"/fast-distilled/metrics.csv "$out"/best-distilled/metrics.csv "$out"/best-refit/metrics.csv)
fi
[[ " $* " == *" --no-teacher "* ]] || run teacher --config datasets/fashion-mnist-teacher.yaml
[ -f "$out/teacher/metrics.csv" ] && files+=("$out/teacher/metrics.csv")
if [[ " $* " != *" --no-pytorch "* ]]; then
    peers_venv
    # The fast recipe's settings, as torch_recipe.py names them; then distilled, as the second recipe.
    fast=(--layers 784,512,512,10 --learning-rate 0.002 --weight-decay 0.05 --warmup-steps 200 --batch-size 256 --epochs 60
          --dropout 0.25 --label-smoothing 0.1 --flip)
    "$venv/bin/python" Benchmarks/peers/torch_recipe.py --data "$data" --threads "$(nproc)" --output "$out/pytorch-fast.csv" "${fast[@]}"
    "$venv/bin/python" Benchmarks/peers/torch_recipe.py --data "$data" --threads "$(nproc)" --output "$out/pytorch-fast-distilled.csv" \
        "${fast[@]}" --teacher runs/cnn-teacher.h5 --distill-alpha 0.9 --temperature 4
    files+=("$out/pytorch-fast.csv" "$out/pytorch-fast-distilled.csv")
fi
python3 Benchmarks/accuracy/time_to_accuracy.py "${files[@]}"
