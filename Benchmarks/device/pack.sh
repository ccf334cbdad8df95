#!/usr/bin/env bash
# Packs what the 16-core device machine needs to measure Backprop (it has no
# Swift and no network): a stripped release binary with the Swift runtime
# linked in, the shared libraries `ldd` lists but glibc's, and the
# Fashion-MNIST dataset, as one .tar.xz in the ignored folder .device/.
# Then, in one device call (see measure.sh):
#
#   bash Benchmarks/device/pack.sh
#   device run, carry [".device"]: bash Benchmarks/device/measure.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --static-swift-stdlib
kit=$(mktemp -d)
trap 'rm -rf "$kit"' EXIT
mkdir -p "$kit/lib"
cp .build/release/backprop "$kit/backprop"
strip "$kit/backprop"
# Every shared library but the C library's own (the device has a newer glibc).
ldd .build/release/backprop | awk '/=> \// { print $3 }' \
    | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | while read -r library; do cp -L "$library" "$kit/lib/"; done
[ -f datasets/fashion-mnist.h5 ] || .build/release/backprop import fashion-mnist
cp datasets/fashion-mnist.h5 "$kit/"
cp -r Benchmarks/peers "$kit/peers"
rm -rf "$kit/peers/.venv" "$kit/peers/__pycache__"
mkdir -p .device
tar -C "$kit" -cf - . | xz -T0 -6 > .device/kit.tar.xz
ls -la .device/kit.tar.xz
