#!/usr/bin/env bash
# Side-by-side throughput of Backprop and NumPy, PyTorch and JAX trainers of
# the same workload (same starting weights, same data order, same optimizer),
# interleaved over several rounds on this machine. The first run installs the
# peers from PyPI into Benchmarks/peers/.venv.
#
#   bash Benchmarks/peers/run.sh [ROUNDS] [PEERS] [PRECISIONS]   # e.g. 5 numpy,pytorch,pytorch-compile,jax fp32,bf16
#   bash Benchmarks/peers/run.sh --smoke              # one short round, Backprop and NumPy (CI)
#
# The smoke check runs compare.py with the flags it always passes, on the
# committed sample, with Debian's NumPy, h5py and threadpoolctl: a peer or a
# `bench` flag renamed on one side only fails it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--smoke" ]; then
    swift build
    backprop=.build/debug/backprop
    python=/usr/bin/python3
    data=datasets/fashion-mnist-sample.h5
    timing=(--rounds 1 --peers numpy --repetitions 1 --steps-per-repetition 2 --warmup 1)
else
    rounds=${1:-5}
    peers=${2:-numpy,pytorch,pytorch-compile,jax}
    precisions=${3:-fp32}
    venv=Benchmarks/peers/.venv
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet numpy h5py torch jax threadpoolctl
    fi
    swift build -c release
    backprop=.build/release/backprop
    python=$venv/bin/python
    data=datasets/fashion-mnist.h5
    [ -f "$data" ] || "$backprop" import fashion-mnist
    timing=(--rounds "$rounds" --peers "$peers" --precisions "$precisions" --epoch)
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The starting point every trainer shares: initial weights and the epoch-0 order.
"$backprop" train --data "$data" --epochs 0 --run-dir "$scratch/run" --output "$scratch/init.h5" > /dev/null
lscpu | grep -E "Model name|^CPU\(s\)|CPU family|^Model:" >&2 || true
"$python" Benchmarks/peers/compare.py --backprop "$backprop" --python "$python" \
    --data "$data" --init "$scratch/init.h5" "${timing[@]}"
[ "${1:-}" = "--smoke" ] && echo "smoke check passed: every trainer printed its report (a debug build for 2 steps: not a measurement)"
exit 0
