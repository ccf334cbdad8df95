#!/usr/bin/env bash
# libFuzzer over the dataset and checkpoint readers, AddressSanitizer on.
#
#   bash Fuzz/run.sh [SECONDS] [JOBS]     # default 60 s, 1 job
#
# Builds backprop-fuzz with -DFUZZING -sanitize=fuzzer,address (in
# .build-fuzz), seeds the corpus from make_corpus.py (a valid dataset, a valid
# checkpoint and every malformed case), adds Fuzz/regressions/*, and runs. A
# crash leaves crash-* in Fuzz/findings/ and a non-zero exit. Needs h5py and
# NumPy (python3-h5py, python3-numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
jobs=${2:-1}
work=.build-fuzz/work
python=${PYTHON:-/usr/bin/python3}
mkdir -p "$work" Fuzz/findings

# The seeds: a valid dataset and checkpoint (written by the ordinary build), and the corpus.
swift build --product backprop > /dev/null
"$python" Fuzz/make_corpus.py dataset "$work/dataset.h5"
.build/debug/backprop train --data "$work/dataset.h5" --layers 5,4,3 --epochs 1 --batch-size 8 \
    --run-dir "$work/run" --output "$work/checkpoint.h5" > /dev/null
rm -rf "$work/seeds"
"$python" Fuzz/make_corpus.py corpus --dataset "$work/dataset.h5" --checkpoint "$work/checkpoint.h5" --out "$work/seeds" > /dev/null
cp "$work/dataset.h5" "$work/checkpoint.h5" "$work/seeds/"
rm -f "$work/seeds/manifest.json" "$work/seeds/external-storage.bin"
cp Fuzz/regressions/* "$work/seeds/" 2>/dev/null || true
mkdir -p "$work/corpus"

swift build -c release --scratch-path .build-fuzz --product backprop-fuzz \
    -Xswiftc -DFUZZING -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 \
    | grep -vE "warning: Cannot export local symbol '__asan" || true
fuzzer=.build-fuzz/release/backprop-fuzz
# detect_leaks=0: libhdf5 keeps free lists and global state alive until exit.
# libhdf5 1.10.8 asks malloc for petabytes when a crafted header says so
# (Fuzz/regressions/header-huge-allocation.h5); glibc then returns NULL and
# H5Fopen fails cleanly. To see the same here, allocations above 2 GiB return
# NULL (max_allocation_size_mb) instead of stopping the run, and libFuzzer's
# own malloc limit is off (-rss_limit_mb=0; -timeout still stops hangs).
ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048 "$fuzzer" "$work/corpus" "$work/seeds" \
    -max_total_time="$seconds" -rss_limit_mb=0 -timeout=20 -max_len=65536 \
    -jobs="$jobs" -workers="$jobs" -artifact_prefix=Fuzz/findings/ -print_final_stats=1
