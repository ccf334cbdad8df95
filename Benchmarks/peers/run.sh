#!/usr/bin/env bash
# Side-by-side throughput of Backprop and NumPy, PyTorch and JAX trainers of
# the same workload (same starting weights, same data order, same optimizer),
# interleaved over several rounds on this machine. Not part of CI: the peers
# are large. The first run installs them from PyPI into Benchmarks/peers/.venv.
#
#   bash Benchmarks/peers/run.sh [ROUNDS] [PEERS]     # e.g. 5 numpy,pytorch,jax
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
peers=${2:-numpy,pytorch,jax}
venv=Benchmarks/peers/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet numpy h5py torch jax
fi
swift build -c release
backprop=.build/release/backprop
[ -f datasets/fashion-mnist.h5 ] || "$backprop" import fashion-mnist
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The starting point every trainer shares: initial weights and the epoch-0 order.
"$backprop" train --epochs 0 --run-dir "$scratch/run" --output "$scratch/init.h5" > /dev/null
lscpu | grep -E "Model name|^CPU\(s\)|CPU family|^Model:" >&2 || true
grep -qw avx512f /proc/cpuinfo && echo "AVX-512: yes" >&2 || echo "AVX-512: no" >&2
"$venv/bin/python" Benchmarks/peers/compare.py --backprop "$backprop" --python "$venv/bin/python" \
    --data datasets/fashion-mnist.h5 --init "$scratch/init.h5" --rounds "$rounds" --peers "$peers"
