#!/usr/bin/env bash
# OpenBLAS against BLIS on the reference model's 8 training GEMMs (one shard
# of 128 rows), one BLAS thread per caller, 1 and 2 concurrent callers,
# interleaved rounds. Not in CI: it installs libblis-dev.
#
#   bash Benchmarks/blas/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")"
dpkg -s libblis-dev > /dev/null 2>&1 || apt-get install -y libblis-dev
gcc -O2 -o /tmp/backprop-gemm-compare gemm_compare.c -lpthread -ldl
lscpu | grep "Model name"
OPENBLAS_NUM_THREADS=1 BLIS_NUM_THREADS=1 /tmp/backprop-gemm-compare "${1:-9}"
