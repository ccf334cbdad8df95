#!/usr/bin/env bash
# Builds the library user (a package that depends on Backprop by path, as the
# DocC article shows), runs the article's code on Debian's Fashion-MNIST IDX
# files with 2,000 training rows, and checks that its binary links neither
# OpenBLAS nor gfortran (training never calls a BLAS). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release
binary=.build/release/LibraryUser
if ldd "$binary" | grep -E -i "openblas|gfortran|blas"; then
    echo "run.sh: $binary links a BLAS; BackpropCore must not" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$binary" /usr/share/datasets/fashion-mnist "$work" 2000 | tee "$work/out.txt"
grep -q "accuracy: [0-9]" "$work/out.txt"
grep -q "^refused: .*no-such-model.h5" "$work/out.txt"
grep -q "^best epoch [1-9][0-9]* of [1-9][0-9]*: test " "$work/out.txt"
echo "library user: built, trained, saved and reloaded; no BLAS linked"
