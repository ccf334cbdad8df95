#!/usr/bin/env bash
# The distilled Fashion-MNIST recipe end to end, and its table: three teacher
# members (datasets/fashion-mnist-teacher.yaml, seeds 11–13), their ensemble
# (backprop ensemble, over /train only), then three students
# (datasets/fashion-mnist-distilled.yaml, seeds 1–3). Each stage that has
# finished (its model.h5 is there) is skipped, so a stopped script picks up
# where it was; the runs themselves resume with `backprop train --resume`.
# With --cnn the teacher is the convolutional one of cnn_teacher.sh instead
# (PyTorch), and the students are runs/cnn-distilled-S. With --best, the
# best distilled recipe (datasets/fashion-mnist-best-distilled.yaml: the CNN
# teacher with its views), its students runs/best-distilled-S. With
# --ensemble, the same recipe taught by an ensemble of three CNNs
# (cnn_teacher.sh --ensemble), its students runs/ens-distilled-S. With
# --refit, the best distilled recipe refit on all 60,000 training rows
# (datasets/fashion-mnist-best-refit.yaml, cnn_teacher.sh --refit), its
# students runs/best-refit-S. --seeds S,S,… runs the students of those seeds
# instead of 1, 2, 3 (the table's mean is then theirs: choose the seeds
# before any runs, e.g. --refit --seeds 0,1,2,3,4,5,6 for the recipe's mean).
#
#   bash Benchmarks/accuracy/distilled.sh [PARALLEL] [--cnn | --best | --ensemble | --refit] [--seeds S,S,…]   # PARALLEL runs at once (default 3, one worker each)
set -euo pipefail
cd "$(dirname "$0")/../.."
parallel=3
cnn=false
best=false
ensemble=false
refit=false
seeds=(1 2 3)
next_is_seeds=false
for argument in "$@"; do
    if $next_is_seeds; then
        [[ $argument =~ ^[0-9]+(,[0-9]+)*$ ]] || {
            echo "distilled.sh: --seeds $argument: give seeds as whole numbers joined by commas, e.g. 1,2,3" >&2; exit 2; }
        IFS=, read -r -a seeds <<< "$argument"
        next_is_seeds=false
        continue
    fi
    case $argument in
        --seeds) next_is_seeds=true ;;
        --cnn) cnn=true ;;
        --best) best=true ;;
        --ensemble) ensemble=true ;;
        --refit) refit=true ;;
        *) [[ $argument =~ ^[1-9][0-9]*$ ]] || {
               echo "distilled.sh: unknown argument $argument (give PARALLEL, --cnn, --best, --ensemble, --refit or --seeds S,S,…)" >&2; exit 2; }
           parallel=$argument ;;
    esac
done
$next_is_seeds && { echo "distilled.sh: --seeds needs a list of seeds, e.g. --seeds 1,2,3" >&2; exit 2; }
source Benchmarks/accuracy/setup.sh
workers=$(( $(nproc) / parallel )); [ "$workers" -ge 1 ] || workers=1

# Runs `train --config $1 --seed S --run-dir runs/$2-S "${extra[@]}"` for each seed in $3…, $parallel at a time.
extra=()
stage() {
    local config=$1 name=$2; shift 2
    for seed in "$@"; do
        [ -f "runs/$name-$seed/model.h5" ] && continue
        if [ -d "runs/$name-$seed" ]; then
            "$backprop" train --resume "runs/$name-$seed" --workers "$workers" --quiet > "runs/$name-$seed.log" 2>&1 &
        else
            "$backprop" train --config "$config" "${extra[@]}" --seed "$seed" --workers "$workers" --run-dir "runs/$name-$seed" --quiet > "runs/$name-$seed.log" 2>&1 &
        fi
        while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
    done
    wait
}

# The CNN-taught recipes: the teacher of `cnn_teacher.sh $1` (its log $2),
# then the students $4-1…3 of recipe $3, taught by extra=(…) if given.
cnn_recipe() {
    local teacher=$1 log=$2 config=$3 name=$4
    bash Benchmarks/accuracy/cnn_teacher.sh ${teacher:+"$teacher"}
    stage "$config" "$name" "${seeds[@]}"
    lscpu | grep -E "Model name|^CPU\(s\)" || true
    python3 Benchmarks/accuracy/recipe_table.py "${seeds[@]/#/runs/$name-}"
    grep "accuracy /train" "$log" || true
}
if $refit; then
    cnn_recipe --refit runs/cnn-refit.log datasets/fashion-mnist-best-refit.yaml best-refit
elif $ensemble; then
    extra=(--teacher runs/cnn-ensemble-views.h5)
    cnn_recipe --ensemble runs/cnn-ensemble.log datasets/fashion-mnist-best-distilled.yaml ens-distilled
elif $best; then
    cnn_recipe "" runs/cnn-teacher.log datasets/fashion-mnist-best-distilled.yaml best-distilled
elif $cnn; then
    extra=(--teacher runs/cnn-teacher.h5)
    cnn_recipe "" runs/cnn-teacher.log datasets/fashion-mnist-distilled.yaml cnn-distilled
fi
if $refit || $ensemble || $best || $cnn; then exit 0; fi

stage datasets/fashion-mnist-teacher.yaml teacher 11 12 13
[ -f runs/teacher.h5 ] || "$backprop" ensemble --checkpoints runs/teacher-11/model.h5 runs/teacher-12/model.h5 runs/teacher-13/model.h5 \
    --output runs/teacher.h5 | tee runs/teacher.log
stage datasets/fashion-mnist-distilled.yaml distilled "${seeds[@]}"

lscpu | grep -E "Model name|^CPU\(s\)" || true
python3 Benchmarks/accuracy/recipe_table.py runs/teacher-11 runs/teacher-12 runs/teacher-13 "${seeds[@]/#/runs/distilled-}"
grep "ensemble's accuracy" runs/teacher.log || true
