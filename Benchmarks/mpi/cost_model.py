#!/usr/bin/env python3
"""Projected samples/s of `mpirun -np N backprop train` from the cost model
of DistributedStep (README, "Several processes: mpirun"), for N = 2…64 ranks
of one worker each, a global batch of 256 samples per rank, on two networks.

    cost_model.py [--rate SAMPLES_PER_S] [--fixed MS] [--parameters P] [--shard S]

--rate: one worker's samples/s on the step (`backprop bench --workers 1`);
--fixed: the per-step work that does not shrink with N (packing, the owner's
sum and update, the wᵀ refresh), in ms (a 2-rank `backprop bench` step minus
its collectives minus its compute). Defaults: this README's measurements.

Per rank and step: compute (B/N)/rate + fixed; bytes 4P·S_r·(N−1)/N (the
all-to-all of the shard chains, S_r = shards per rank) + 4P·(N−1)/N (the
all-gather of the parameter slices); latency α·((N−1) + 2·⌈log2 N⌉) (a
pairwise all-to-all, two recursive-doubling all-gathers). No overlap of
communication and compute, full bisection bandwidth."""
import argparse
import math

parser = argparse.ArgumentParser()
parser.add_argument("--rate", type=float, default=68_000)
parser.add_argument("--fixed", type=float, default=0.38)
parser.add_argument("--parameters", type=int, default=235_146)
parser.add_argument("--shard", type=int, default=128)
arguments = parser.parse_args()
P, rate, fixed = arguments.parameters, arguments.rate, arguments.fixed * 1e-3

print("| network | ranks | global batch | MB per rank per step | collectives ms | step ms | samples/s | efficiency |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, bandwidth, alpha in (("25 Gb/s, α 10 µs", 25e9 / 8, 10e-6), ("100 Gb/s, α 2 µs", 100e9 / 8, 2e-6)):
    for n in (2, 4, 8, 16, 32, 64):
        batch = 256 * n
        local_shards = math.ceil(batch / arguments.shard) / n
        data = 4 * P * local_shards * (n - 1) / n + 4 * P * (n - 1) / n
        communication = alpha * ((n - 1) + 2 * math.ceil(math.log2(n))) + data / bandwidth
        step = (batch / n) / rate + fixed + communication
        print(f"| {name} | {n} | {batch:,} | {data / 1e6:.2f} | {communication * 1e3:.2f} | {step * 1e3:.2f} "
              f"| {batch / step:,.0f} | {batch / step / (n * rate):.2f} |")
