"""What the three peer trainers share: the workload, its data and starting
point (read from files Backprop wrote, so every trainer starts from the same
weights and visits the samples in the same order), and the timing protocol."""
import argparse
import json
import resource
import statistics
import time

import h5py
import numpy as np

BATCH = 256
LEARNING_RATE = 0.05
MOMENTUM = 0.9


def arguments(description):
    """The options every peer takes, named as `backprop bench` names them
    (--steps-per-repetition, --repetitions, --warmup): compare.py passes the
    same flags to both, and the smoke check (`run.sh --smoke`) runs them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="Backprop dataset (HDF5)")
    parser.add_argument("--init", required=True, help="Backprop checkpoint written by `train --epochs 0`")
    parser.add_argument("--steps-per-repetition", type=int, default=40, help="timed steps in each repetition")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up steps before the repetitions")
    parser.add_argument("--epoch", action="store_true", help="also time one whole epoch, everything in")
    parser.add_argument("--compile", action="store_true", help="PyTorch: torch.compile the model (ignored by the others)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: the products in bf16 with fp32 master weights (PyTorch's CPU autocast, JAX's bf16 operands with fp32 results)")
    return parser.parse_args()


def blas_pools():
    """The BLAS and OpenMP thread pools loaded in this process, as
    threadpoolctl sees them: "openblas 0.3.21 SkylakeX ×2, …"; what
    threadpoolctl cannot see is said so."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    pools = [f"{p.get('internal_api', '?')} {p.get('version') or ''} {p.get('architecture') or ''} ×{p.get('num_threads', '?')}"
             for p in threadpool_info()]
    return ", ".join(" ".join(pool.split()) for pool in pools) or "none loaded"


def load(args):
    """x as uint8 [N, 784] with its scale, y as int64 [N], the initial
    weights [(W [out, in], b [out])] and the epoch-0 visiting order."""
    with h5py.File(args.data, "r") as f:
        x = f["train/x"][()]
        scale = float(f["train/x"].attrs["scale"])
        y = f["train/y"][()].astype(np.int64)
    with h5py.File(args.init, "r") as f:
        layers = []
        i = 0
        while f"model/layers/{i}" in f:
            layers.append((f[f"model/layers/{i}/weight"][()], f[f"model/layers/{i}/bias"][()]))
            i += 1
        order = f["progress/order"][()].astype(np.int64)
    return x, scale, y, layers, order


def batches(order):
    """Index arrays of the mini-batches, cycling through the order."""
    n = len(order)
    start = 0
    while True:
        if start + BATCH > n:
            start = 0
        yield order[start:start + BATCH]
        start += BATCH


def measure(name, args, order, step, threads, sync=lambda: None):
    """Runs `step(indices)` for warm-up, then repetitions × steps, then one
    whole epoch (every batch of the order, everything in: the loop and the
    batch gather), and prints one JSON line: samples/s per repetition and
    their median, the epoch's samples/s, peak RSS, the trainer's thread count
    and the BLAS kernels loaded (threadpoolctl). `sync()` waits for the work
    queued so far: a trainer that dispatches asynchronously (JAX) is
    synchronised once at the end of each timed window, as its users write it,
    not after every step."""
    batches_per_epoch = len(order) // BATCH
    order = batches(order)
    for _ in range(args.warmup):
        step(next(order))
    sync()
    rates = []
    for _ in range(args.repetitions):
        start = time.perf_counter()
        for _ in range(args.steps_per_repetition):
            step(next(order))
        sync()
        rates.append(args.steps_per_repetition * BATCH / (time.perf_counter() - start))
    epoch_rate = None
    if args.epoch:
        start = time.perf_counter()
        for _ in range(batches_per_epoch):
            step(next(order))
        sync()
        epoch_rate = batches_per_epoch * BATCH / (time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peer": name, "median": statistics.median(rates), "rates": rates, "epoch": epoch_rate,
                      "peak_rss_mib": peak, "threads": threads, "blas": blas_pools()}))
