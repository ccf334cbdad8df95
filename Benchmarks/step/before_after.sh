#!/usr/bin/env bash
# The step beside its products, before and after a change: two builds of
# `backprop` run `bench --json` in turn (A B A B …) on every case of issue 52
# (batch 256/64/32; momentum, SGD, Adam; synthetic and real data; 3 and 4
# workers; clip and EMA), and one table of medians comes out.
#
#   bash Benchmarks/step/before_after.sh OLD_BACKPROP NEW_BACKPROP [ROUNDS]
#
# ROUNDS (default 3) alternations of each case; each bench run is itself
# 7 repetitions of 40 steps. Quote the CPU (`lscpu`) with the table: these
# machines are shared and noisy, so only ratios within one run compare.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BACKPROP NEW_BACKPROP [ROUNDS]" >&2; exit 64; }
old=$1 new=$2 rounds=${3:-3}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "$0: $b: not an executable" >&2; exit 64; }; done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "$0: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 64; }
data=${DATA:-datasets/fashion-mnist.h5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cases=(
  "b256-momentum|--workers 1,2"
  "b256-momentum-3-4|--workers 2,3,4"
  "b64-momentum|--workers 1,2 --batch-size 64"
  "b32-momentum|--workers 1,2 --batch-size 32"
  "b32-sgd|--workers 1,2 --batch-size 32 --optimizer sgd"
  "b32-adam|--workers 1,2 --batch-size 32 --optimizer adam"
  "b256-clip-ema|--workers 1,2 --clip-norm 1 --ema 0.999"
)
if [ -f "$data" ]; then
  cases+=("real-b256-momentum|--workers 1,2 --data $data"
          "real-b32-momentum|--workers 1,2 --batch-size 32 --data $data"
          "real-b32-sgd|--workers 1,2 --batch-size 32 --optimizer sgd --data $data"
          "real-b32-adam|--workers 1,2 --batch-size 32 --optimizer adam --data $data")
fi
lscpu | grep -m1 "Model name" || true
for ((r = 0; r < rounds; r++)); do
  for c in "${cases[@]}"; do
    name=${c%%|*} flags=${c#*|}
    for side in old new; do
      bin=$old; [ "$side" = new ] && bin=$new
      # shellcheck disable=SC2086
      "$bin" bench $flags --no-products --json > "$out/$name.$side.$r.json"
    done
  done
done
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
cases = sorted({os.path.basename(p).split('.')[0] for p in glob.glob(f"{out}/*.json")})
def load(name, side):
    return [json.load(open(p)) for p in sorted(glob.glob(f"{out}/{name}.{side}.*.json"))]
print("case                   workers   samples/s old → new (×)        update ms old → new   of ceiling old → new   speed-up old → new")
for name in cases:
    old, new = load(name, "old"), load(name, "new")
    for i, row in enumerate(old[0]["results"]):
        w = row["workers"]
        def med(runs, f):
            return statistics.median(f(run["results"][i]) for run in runs)
        so, sn = med(old, lambda r: r["median"]), med(new, lambda r: r["median"])
        uo, un = med(old, lambda r: r["phaseMilliseconds"]["update"]), med(new, lambda r: r["phaseMilliseconds"]["update"])
        fo, fn = med(old, lambda r: r["fractionOfCeiling"]), med(new, lambda r: r["fractionOfCeiling"])
        po, pn = med(old, lambda r: r["speedUp"]), med(new, lambda r: r["speedUp"])
        print(f"{name:22} {w:7d}   {so:9,.0f} → {sn:9,.0f} ({sn / so:4.2f}×)   {uo:6.3f} → {un:6.3f}      "
              f"{100 * fo:5.1f} % → {100 * fn:5.1f} %      {po:4.2f}× → {pn:4.2f}×")
PY
