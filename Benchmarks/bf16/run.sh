#!/usr/bin/env bash
# The bf16 product beside the fp32 one on this CPU (Benchmarks/bf16/product.c).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 -ISources/CGemm/include Sources/CGemm/*.c Benchmarks/bf16/product.c -lm -lpthread -o "$out/product"
lscpu | grep 'Model name'
"$out/product"
