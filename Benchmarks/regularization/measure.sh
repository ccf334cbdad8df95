#!/bin/bash
# The cost of dropout and augmentation per step: `backprop bench` of the
# reference model on Fashion-MNIST, plain and with each regularisation,
# interleaved round by round (the machine's speed drifts between rounds, not
# within one), and each one's median over rounds beside the median of its
# per-round ratio to the plain step.
#
#   bash Benchmarks/regularization/measure.sh [rounds] [extra bench flags…]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
shift || true
backprop=${BACKPROP:-.build/release/backprop}
data=${DATA:-datasets/fashion-mnist.h5}
[ -x "$backprop" ] || { echo "measure.sh: $backprop not built (swift build -c release)" >&2; exit 1; }
[ -f "$data" ] || { echo "measure.sh: $data missing (backprop import fashion-mnist)" >&2; exit 1; }
names=(plain dropout input-dropout augment all)
flags=("" "--dropout 0.3" "--input-dropout 0.1" "--augment shift=2,flip" "--dropout 0.3 --input-dropout 0.1 --augment shift=2,flip")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lscpu | grep -m1 'Model name' | sed 's/^ *Model name: */CPU: /'
echo "$backprop bench --data $data --workers $(nproc) --steps-per-repetition 40 --repetitions 3 --no-products $*; $rounds rounds"
for round in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
        # shellcheck disable=SC2086
        "$backprop" bench --data "$data" --workers "$(nproc)" --steps-per-repetition 40 --repetitions 3 --no-products --json \
            ${flags[$i]} "$@" > "$out/$round-${names[$i]}.json"
    done
done
/usr/bin/python3 - "$out" "$rounds" "${names[@]}" <<'PY'
import json, statistics, sys
out, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rate = {(r, n): json.load(open(f"{out}/{r}-{n}.json"))["results"][0]["median"] for r in range(1, rounds + 1) for n in names}
print(f"{'step':<14} {'samples/s (median)':>19} {'× plain (median of rounds)':>28} {'cost':>7}")
for n in names:
    ratio = statistics.median(rate[(r, n)] / rate[(r, "plain")] for r in range(1, rounds + 1))
    print(f"{n:<14} {statistics.median(rate[(r, n)] for r in range(1, rounds + 1)):>19,.0f} {ratio:>28.3f} {100 * (1 / ratio - 1):>6.1f}%")
PY
