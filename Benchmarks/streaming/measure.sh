#!/usr/bin/env bash
# Streaming from disk against training in memory (issue 24), on generated data.
#
#   bash Benchmarks/streaming/measure.sh [GB ...]       (default: 1 20)
#
# For each size: writes DIR/teacher-<GB>g.h5 with `backprop generate` (784
# byte features, 10 classes, N = GB·10⁹/784 samples) unless it is there, then
# measures, for the reference model (784-256-128-10, batch 256, shuffled in
# blocks of 1,024 rows, windows of 8):
#   - the wall time of a one-step run streamed (start-up, one step, the test
#     split, the checkpoint): what a start costs when nothing is hashed;
#   - STEPS steps streamed: samples/s and peak RSS (getrusage of the child);
#   - the same in memory, for the sizes that fit (the 1 GB file).
# and the disk's sequential read rate (dd, O_DIRECT) beside them. Every
# number comes from one run of this script; quote medians of several.
#
# Environment: BACKPROP (default .build/release/backprop), DIR (default
# /tmp/backprop-streaming), STEPS (default 3000), ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
backprop=${BACKPROP:-.build/release/backprop}
dir=${DIR:-/tmp/backprop-streaming}
steps=${STEPS:-3000}
rounds=${ROUNDS:-3}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 20)
mkdir -p "$dir"
[ -x "$backprop" ] || swift build -c release
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%F)"

# Peak RSS (MiB) and the step line of one run: prints "rss_mib seconds_in_steps wall_s".
measure() {
    /usr/bin/python3 - "$@" <<'PY'
import re, resource, subprocess, sys, time
start = time.monotonic()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.monotonic() - start
if run.returncode != 0:
    sys.exit(run.stderr)
steps = re.search(r"\(([\d.]+) s in optimizer steps", run.stdout)
waited = re.search(r"([\d.]+) s of them waiting for data", run.stdout)
waited = float(waited.group(1)) if waited else 0.0
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} {steps.group(1) if steps else 'nan'} {wall:.2f} {waited:.2f}")
PY
}

for gb in "${sizes[@]}"; do
    file="$dir/teacher-${gb}g.h5"
    samples=$((gb * 1000000000 / 784))
    if [ ! -f "$file" ]; then
        echo "generating $file ($samples samples)"
        /usr/bin/time -f "  generate: %e s, peak RSS %M KiB" "$backprop" generate --samples "$samples" --output "$file"
    fi
    echo "$file: $(du -h "$file" | cut -f1); disk read (O_DIRECT, 1 GiB):" \
        "$(dd if="$file" of=/dev/null bs=4M count=256 iflag=direct 2>&1 | tail -1 | sed 's/.*, //')"
    train=("$backprop" train --data "$file" --shuffle-blocks 1024 --shuffle-window 8 --quiet)
    rm -rf "$dir/start-$gb"
    read -r rss _ wall _ < <(measure "${train[@]}" --stream --steps 1 --run-dir "$dir/start-$gb")
    echo "  one-step run streamed: ${wall} s wall, peak RSS ${rss} MiB"
    bytes=$(stat -c %s "$file")
    memory=$([ "$bytes" -lt $((8 << 30)) ] && echo yes || echo no)
    for round in $(seq "$rounds"); do
        for mode in stream memory; do
            [ "$mode" = memory ] && [ "$memory" = no ] && continue
            flag=$([ "$mode" = stream ] && echo --stream || echo --data-memory=1T)
            rm -rf "$dir/run-$gb-$mode"
            read -r rss seconds wall waited < <(measure "${train[@]}" "$flag" --steps "$steps" --run-dir "$dir/run-$gb-$mode")
            rate=$(python3 -c "print(f'{$steps * 256 / $seconds:,.0f}')")
            echo "  round $round $mode: $rate samples/s ($seconds s in $steps steps, waited $waited s), peak RSS $rss MiB, wall $wall s"
        done
    done
done
