"""Runs Backprop's `bench` and the NumPy, PyTorch and JAX trainers of the same
workload interleaved, round after round, and prints one table of medians and
ratios. Called by run.sh, which prepares the environment."""
import argparse
import os
import datetime
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def vector_extensions():
    """The CPU's widest vector extensions, from /proc/cpuinfo's flags: "AVX-512, AMX", "AVX2", …"""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    found = [name for flag, name in [("avx512f", "AVX-512"), ("amx_tile", "AMX")] if flag in flags]
    if not found:
        found = ["AVX2" if "avx2" in flags else "no AVX2"]
    return ", ".join(found)


def run_json(command, required, environment=None):
    """The JSON object the command prints; exits with one line naming the
    command when it fails or prints no JSON with the `required` keys."""
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    name = Path(command[1] if "python" in Path(command[0]).name else command[0]).name
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"error: {name} exited with status {result.returncode}: {last}")
    try:
        report = json.loads(result.stdout[result.stdout.index("{"):])
    except ValueError:
        sys.exit(f"error: {name} printed no JSON report")
    missing = [key for key in required if key not in report]
    if missing:
        sys.exit(f"error: {name}'s report lacks {', '.join(missing)}")
    return report


def train_epoch(args, precision):
    """Samples/s of one epoch of `backprop train` (its epoch line: the
    steps with the loop and the batch gather), from the same starting point
    as the peers (the default seed that wrote --init)."""
    import re
    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run([args.backprop, "train", "--data", args.data, "--epochs", "1", "--workers", str(args.threads),
                                 "--precision", precision, "--run-dir", scratch + "/run"], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"error: backprop train exited with status {result.returncode}: {last}")
    match = re.search(r"epoch 1/1 .*?([0-9,]+) samples/s", result.stdout + result.stderr)
    if not match:
        sys.exit("error: backprop train printed no epoch line with samples/s")
    return float(match.group(1).replace(",", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backprop", required=True)
    parser.add_argument("--python", required=True, help="the interpreter with numpy, h5py, torch, jax")
    parser.add_argument("--data", required=True)
    parser.add_argument("--init", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peers", default="numpy,pytorch,jax")
    parser.add_argument("--threads", type=int, default=2,
                        help="Backprop's workers and the NumPy and PyTorch threads (JAX takes every core)")
    # The timing options, named as `backprop bench` and every peer (common.py) name them.
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--steps-per-repetition", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--precisions", default="fp32",
                        help="fp32, bf16 or fp32,bf16: every trainer at each (PyTorch: CPU autocast; JAX: bf16 operands)")
    parser.add_argument("--epoch", action="store_true",
                        help="also time one whole epoch of each, everything in (Backprop: `train --epochs 1`'s epoch line)")
    args = parser.parse_args()
    timing = ["--repetitions", str(args.repetitions), "--steps-per-repetition", str(args.steps_per_repetition),
              "--warmup", str(args.warmup)]
    environment = dict(os.environ, PEER_THREADS=str(args.threads))

    peers = {"numpy": ["numpy_mlp.py"], "pytorch": ["torch_mlp.py"], "pytorch-compile": ["torch_mlp.py", "--compile"],
             "jax": ["jax_mlp.py"]}
    epoch_flag = ["--epoch"] if args.epoch else []
    epochs = {}
    precisions = [p for p in args.precisions.split(",") if p]

    def label(name, precision):
        return name if precision == "fp32" else f"{name} {precision}"

    trainers = ["backprop"] + [p for p in args.peers.split(",") if p]
    # NumPy has no bf16 product: it runs at fp32 only.
    def runs(name, precision):
        return precision == "fp32" or name != "numpy"
    names = [label(name, precision) for precision in precisions for name in trainers if runs(name, precision)]
    rates = {name: [] for name in names}
    memory = {name: 0.0 for name in names}
    runtime = {}
    ceilings, fractions = [], []
    for round_ in range(args.rounds):
        # Rotate the order so that no trainer always runs first (or after the same one).
        for name in trainers[round_ % len(trainers):] + trainers[:round_ % len(trainers)]:
            if name == "backprop":
                # Every precision in one bench, side by side.
                report = run_json([args.backprop, "bench", "--json", "--workers", str(args.threads), "--data", args.data,
                                   "--precision", ",".join(precisions), "--no-products"] + timing,
                                  ["results", "peakResidentMiB", "kernel"])
                for row, precision in zip(report["results"], precisions):
                    runtime[label(name, precision)] = (args.threads, f"own kernel ({report['kernel']}, {precision})")
                    rates[label(name, precision)].append(row["median"])
                    memory[label(name, precision)] = max(memory[label(name, precision)], report["peakResidentMiB"])
                    if args.epoch:
                        epochs.setdefault(label(name, precision), []).append(train_epoch(args, precision))
                ceilings.append(report["results"][0]["ceiling"])
                fractions.append(report["results"][0]["fractionOfCeiling"])
            else:
                for precision in [p for p in precisions if runs(name, p)]:
                    result = run_json([args.python, str(HERE / peers[name][0]), "--data", args.data, "--init", args.init,
                                       "--precision", precision] + peers[name][1:] + timing + epoch_flag,
                                      ["median", "peak_rss_mib", "threads", "blas"], environment)
                    if result.get("epoch"):
                        epochs.setdefault(label(name, precision), []).append(result["epoch"])
                    runtime[label(name, precision)] = (result["threads"], result["blas"])
                    rates[label(name, precision)].append(result["median"])
                    memory[label(name, precision)] = max(memory[label(name, precision)], result["peak_rss_mib"])
            for precision in [p for p in precisions if runs(name, p)]:
                print(f"round {round_ + 1}: {label(name, precision):15s} {rates[label(name, precision)][-1]:10,.0f} samples/s",
                      file=sys.stderr)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    best_peer = max((n for n in names if not n.startswith("backprop")), key=lambda n: medians[n], default=None)
    print(f"{cpu_name()} ({vector_extensions()}), {datetime.date.today()}; MLP 784-256-128-10, ReLU, softmax cross-entropy, "
          f"SGD momentum 0.9, {'/'.join(precisions)}, batch 256, {Path(args.data).name}, {args.threads} threads; {args.rounds} interleaved rounds "
          f"of {args.repetitions} × {args.steps_per_repetition} steps")
    # Backprop ÷ a peer two ways: the ratio of the medians, and the median of
    # the ratios within each round (the two ran minutes apart at most).
    # "Backprop ÷" is Backprop at fp32 over the row; "bf16 ÷" (with bf16 measured) Backprop at bf16 over it.
    def per_round(name, backprop="backprop"):
        return statistics.median(b / p for b, p in zip(rates[backprop], rates[name]))
    bf16 = "backprop bf16" if "bf16" in precisions else None
    print(f"{'trainer':15s} {'median samples/s':>17s} {'min':>9s} {'max':>9s} {'Backprop ÷':>11s} {'per round':>10s}"
          + (f" {'bf16 ÷':>8s} {'per round':>10s}" if bf16 else "") + f" {'peak RSS':>9s}  threads, BLAS")
    for name in names:
        values = rates[name]
        threads, blas = runtime[name]
        fp32 = (f"{medians['backprop'] / medians[name]:10.2f}× {per_round(name):9.2f}×" if "backprop" in medians
                else f"{'':>10s}  {'':>9s} ")
        print(f"{name:15s} {medians[name]:17,.0f} {min(values):9,.0f} {max(values):9,.0f} {fp32}"
              + (f" {medians[bf16] / medians[name]:7.2f}× {per_round(name, bf16):9.2f}×" if bf16 else "")
              + f" {memory[name]:7.0f} MiB  {threads}, {blas}")
    print(f"{'GEMM-only':10s} {statistics.median(ceilings):17,.0f}   (Backprop reaches "
          f"{100 * statistics.median(fractions):.1f} % of it: the median of each bench's own ratio)")
    if best_peer:
        for ours in [n for n in ["backprop", bf16] if n in medians]:
            print(f"{ours} ÷ best peer ({best_peer}): {medians[ours] / medians[best_peer]:.2f}× "
                  f"(median of per-round ratios {per_round(best_peer, ours):.2f}×)")
    if epochs:
        # A whole epoch, everything in: each trainer's loop and batch gather, one sync at its end.
        epoch_medians = {name: statistics.median(values) for name, values in epochs.items()}
        print("one whole epoch, everything in (median samples/s): " + ", ".join(
            f"{name} {value:,.0f}" for name, value in epoch_medians.items()))
        peers_timed = [n for n in epoch_medians if not n.startswith("backprop")]
        for ours in [n for n in ["backprop", bf16] if n in epoch_medians]:
            if peers_timed:
                best = max(peers_timed, key=lambda n: epoch_medians[n])
                print(f"{ours} ÷ best peer over a whole epoch ({best}): {epoch_medians[ours] / epoch_medians[best]:.2f}×")


if __name__ == "__main__":
    main()
