#!/usr/bin/env bash
# Every measurement issue 13 asks of the 16-core machine, in one call
# (about 6 minutes): unpacks .device/kit.tar.xz (pack.sh), then
#   - lscpu, and each training product alone on every path and on OpenBLAS;
#   - `backprop bench` for 1, 2, 4, 8 and 16 workers at batch 256 and 2048,
#     with OpenBLAS on its best core type (SkylakeX) as the yardstick;
#   - the default 10-epoch `train` on all cores, and the same run with
#     --kernel avx2 --workers 3: the fingerprints must agree;
#   - the NumPy, PyTorch and JAX trainers beside Backprop (Benchmarks/peers),
#     where the machine's python3 has them.
# Everything printed also goes to $OUT/measure.log (and JSON beside it).
set -uo pipefail
out=${OUT:-/tmp/backprop-measure}
mkdir -p "$out"
exec > >(tee "$out/measure.log") 2>&1
kit=/tmp/backprop-kit
rm -rf "$kit" && mkdir -p "$kit"
xz -dc .device/kit.tar.xz | tar -C "$kit" -xf -
export LD_LIBRARY_PATH="$kit/lib" OPENBLAS_CORETYPE=SkylakeX
backprop="$kit/backprop"
cd "$kit"
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200
"$backprop" --version
quick=${QUICK:-}
workers=${WORKERS:-1,2,4,8,16}
steps=40; repetitions=7
[ -n "$quick" ] && { workers=1,2; steps=5; repetitions=2; }

echo "== bench, batch 256"
"$backprop" bench --workers "$workers" --steps-per-repetition $steps --repetitions $repetitions
"$backprop" bench --workers "$workers" --steps-per-repetition $steps --repetitions $repetitions --no-products --json > "$out/bench-256.json"
echo "== bench, batch 2048"
"$backprop" bench --workers "$workers" --batch-size 2048 --steps-per-repetition $((steps / 4 + 1)) --repetitions $repetitions --no-products

echo "== train, defaults (all cores)"
epochs=10; [ -n "$quick" ] && epochs=1
"$backprop" train --data fashion-mnist.h5 --epochs $epochs --run-dir runs/default | tail -3
echo "== train, --kernel avx2 --workers 3 (same fingerprint expected)"
"$backprop" train --data fashion-mnist.h5 --epochs $epochs --run-dir runs/avx2 --kernel avx2 --workers 3 --quiet

if python3 -c "import numpy, torch, jax, h5py" 2>/dev/null; then
    echo "== peers"
    "$backprop" train --data fashion-mnist.h5 --epochs 0 --run-dir runs/init --output init.h5 > /dev/null
    rounds=3; [ -n "$quick" ] && rounds=1
    JAX_PLATFORMS=cpu python3 peers/compare.py --backprop "$backprop" --python python3 --data fashion-mnist.h5 \
        --init init.h5 --rounds $rounds --threads "${PEER_THREADS:-16}"
else
    echo "== peers skipped: python3 lacks numpy, torch, jax or h5py"
fi
