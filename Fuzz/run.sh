#!/usr/bin/env bash
# libFuzzer over every reader of outside input, AddressSanitizer on: the
# dataset and checkpoint readers (HDF5), then the CSV, NPY, IDX/gzip and
# configuration-file parsers.
#
#   bash Fuzz/run.sh [SECONDS] [JOBS]     # default 60 s, 1 job
#
# Builds backprop-fuzz with -DFUZZING -sanitize=fuzzer,address (in
# .build-fuzz). The HDF5 door is seeded from make_corpus.py (a valid dataset,
# a valid checkpoint, a regression dataset and checkpoint, and every
# malformed case) and Fuzz/regressions/*, and fuzzed for SECONDS; each other
# door from valid inputs and its files in Fuzz/doors/, for SECONDS/3. JOBS
# forked fuzzers each. Inputs that crash or hang are kept in Fuzz/findings/
# (named after their door); the exit status is non-zero when one of them is
# outside libhdf5. Needs h5py and NumPy (python3-h5py, python3-numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
jobs=${2:-1}
work=.build-fuzz/work
python=${PYTHON:-/usr/bin/python3}
mkdir -p "$work" Fuzz/findings

# The seeds: a valid dataset and checkpoint (written by the ordinary build), and the corpus.
swift build --product backprop > /dev/null
rm -rf "$work/run" "$work/run-regression"  # a run directory holds one run
"$python" Fuzz/make_corpus.py dataset "$work/dataset.h5"
.build/debug/backprop train --data "$work/dataset.h5" --layers 5,4,3 --epochs 1 --batch-size 8 \
    --run-dir "$work/run" --output "$work/checkpoint.h5" > /dev/null
rm -rf "$work/seeds"
"$python" Fuzz/make_corpus.py corpus --dataset "$work/dataset.h5" --checkpoint "$work/checkpoint.h5" --out "$work/seeds" > /dev/null
cp "$work/dataset.h5" "$work/checkpoint.h5" "$work/seeds/"
# A teacher (backprop ensemble's), and the same with the views of --augment flip.
.build/debug/backprop ensemble --checkpoints "$work/checkpoint.h5" --data "$work/dataset.h5" --output "$work/seeds/teacher.h5" > /dev/null
"$python" -c "import h5py, numpy as np, shutil, sys; shutil.copy(sys.argv[1], sys.argv[2]); f = h5py.File(sys.argv[2], 'r+'); \
p = f['predictions/outputs'][...]; v = f.create_dataset('predictions/views', data=np.stack([p, p[::-1]], axis=1)); \
v.attrs['augment'] = np.bytes_(b'flip')" "$work/seeds/teacher.h5" "$work/seeds/teacher-views.h5"
# A regression dataset (float32 features and targets) and a checkpoint trained on it.
head -n 101 datasets/friedman1.csv > "$work/friedman1-100.csv"
.build/debug/backprop import csv "$work/friedman1-100.csv" --task regression --output "$work/seeds/regression.h5" > /dev/null
.build/debug/backprop train --data "$work/seeds/regression.h5" --layers 10,4,1 --loss sum-of-squares --epochs 1 \
    --batch-size 8 --run-dir "$work/run-regression" --output "$work/seeds/regression-checkpoint.h5" > /dev/null
rm -f "$work/seeds/manifest.json" "$work/seeds/external-storage.bin"
# Known libhdf5 crashers are not seeds: they would only be rediscovered.
find Fuzz/regressions -type f ! -name "libhdf5-*" -exec cp {} "$work/seeds/" \; 2>/dev/null || true
# The other doors: valid inputs and the malformed ones of Fuzz/doors.
for door in csv npy idx config; do rm -rf "$work/seeds-$door"; mkdir -p "$work/seeds-$door" "$work/corpus-$door"; done
cp Fuzz/doors/csv-* "$work/seeds-csv/"; cp "$work/friedman1-100.csv" "$work/seeds-csv/"
printf 'label,"a","b"\r\n1,2,3\r\n0,"4",5\r\n' > "$work/seeds-csv/quoted.csv"
cp Fuzz/doors/npy-* "$work/seeds-npy/"
"$python" -c "import numpy as np, sys; d = sys.argv[1]; np.save(d + '/f4.npy', np.arange(12, dtype='<f4').reshape(3, 4)); \
np.save(d + '/u1-fortran.npy', np.asfortranarray(np.arange(24, dtype='u1').reshape(2, 3, 4))); np.save(d + '/i8.npy', np.arange(5))" "$work/seeds-npy"
cp Fuzz/doors/idx-* "$work/seeds-idx/"
printf '\0\0\10\3\0\0\0\2\0\0\0\2\0\0\0\2abcdefgh' > "$work/seeds-idx/images.idx"; gzip -k "$work/seeds-idx/images.idx"
cp Fuzz/doors/config-* "$work/seeds-config/"
printf '{"epochs": 3, "layers": [784, 256, 10], "shuffle": false, "learning-rate": 0.05}' > "$work/seeds-config/good.json"
printf 'epochs: 3\nlayers: [784, 256, 10]\nshuffle: false\nlearning-rate: 0.05\n' > "$work/seeds-config/good.yaml"
mkdir -p "$work/corpus"

swift build -c release --scratch-path .build-fuzz --product backprop-fuzz \
    -Xswiftc -DFUZZING -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 \
    | grep -vE "warning: Cannot export local symbol '__asan" || true
fuzzer=.build-fuzz/release/backprop-fuzz
# detect_leaks=0: libhdf5 keeps free lists and global state alive until exit.
# libhdf5 1.10.8 asks malloc for petabytes when a crafted header says so
# (Fuzz/regressions/header-huge-allocation.h5); glibc then returns NULL and
# H5Fopen fails cleanly; others allocate without bound, which the CLI stops
# with RLIMIT_DATA. To see the same here, allocations above 2 GiB, and any
# allocation once the process holds 2 GiB, return NULL (max_allocation_size_mb,
# soft_rss_limit_mb) instead of stopping the run, and libFuzzer's own malloc
# limit is off (-rss_limit_mb=0; -timeout still stops hangs).
# Fork mode goes on after a crash, keeping each input in Fuzz/findings/. The
# Swift runtime's backtracer is off: a crashing input would start it, and it
# would keep the output pipe open after the fuzzer ends.
# A watchdog ends the whole process group a minute after the fuzzing time: a
# job whose process has reached the soft RSS limit can hang in libFuzzer's own
# death path (its mallocs return NULL too), and fork mode waits for every job.
# One door at a time: BACKPROP_FUZZ_DOOR picks the readers.
fuzz() {  # fuzz DOOR SECONDS CORPUS SEEDS PREFIX
    local log=.build-fuzz/fuzz-$1.log
    BACKPROP_FUZZ_DOOR=$1 SWIFT_BACKTRACE=enable=no BACKPROP_MEMORY_LIMIT_MB=2048 ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048:soft_rss_limit_mb=2048 \
        timeout -s KILL $(($2 + 60)) "$fuzzer" "$3" "$4" \
        -max_total_time="$2" -rss_limit_mb=0 -timeout=20 -max_len=65536 -fork="$jobs" \
        -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -artifact_prefix="$5" -print_final_stats=1 > "$log" 2>&1 || true
    # (A file, not a pipe: nothing a crashing input starts can hold the run open.)
    echo "== $1"
    grep -E "^#[0-9]+.*(NEW|REDUCE|pulse)|crash-|timeout-|INFO: fuzzed|stat::" "$log" | tail -8 || true
}
fuzz hdf5 "$seconds" "$work/corpus" "$work/seeds" Fuzz/findings/
for door in csv npy idx config; do
    fuzz "$door" $((seconds / 3 > 0 ? seconds / 3 : 1)) "$work/corpus-$door" "$work/seeds-$door" "Fuzz/findings/$door-"
done

# Replay each input kept by this run for its full report, then sort them: memory
# errors inside libhdf5 1.10.8 itself are known and listed in the README's security
# section (inputs in Fuzz/regressions/libhdf5-*); anything else fails the run.
reports=()
for finding in $(find Fuzz/findings -type f -newer "$work/seeds/dataset.h5" 2>/dev/null); do
    report=".build-fuzz/replay-$(basename "$finding").log"
    door=$(basename "$finding" | cut -d- -f1)
    case "$door" in csv|npy|idx|config) ;; *) door=hdf5 ;; esac
    BACKPROP_FUZZ_DOOR=$door SWIFT_BACKTRACE=enable=no BACKPROP_MEMORY_LIMIT_MB=2048 ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048:soft_rss_limit_mb=2048 \
        timeout 120 "$fuzzer" -rss_limit_mb=0 -timeout=20 "$finding" > "$report" 2>&1 || true
    reports+=("$report")
done
"$python" Fuzz/classify.py "${reports[@]}"
