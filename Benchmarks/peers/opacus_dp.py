"""Opacus's DP-SGD slowdown on the reference workload, beside plain PyTorch:
the MLP 784-256-128-10 (ReLU, cross-entropy), batch 256, SGD momentum 0.9,
PEER_THREADS intra-op threads (default 2); DP-SGD with max_grad_norm 1 and
noise_multiplier 1 (Opacus's per-sample gradients by hooks). Synthetic
inputs of Fashion-MNIST's shape; the data loader is left out of the timing.
Prints the median step times and the median of per-round ratios.

    Benchmarks/peers/.venv/bin/pip install opacus==1.5.2    # (it pins numpy < 2 in that venv)
    PEER_THREADS=2 Benchmarks/peers/.venv/bin/python Benchmarks/peers/opacus_dp.py [ROUNDS]
"""
import os
import statistics
import sys
import time
import warnings

import torch
from opacus import PrivacyEngine

warnings.filterwarnings("ignore")
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("PEER_THREADS", "2")))
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
steps, batch = 40, 256
x = torch.rand(60_000, 784)
y = torch.randint(0, 10, (60_000,))


def model():
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


plain = model()
plain_optimizer = torch.optim.SGD(plain.parameters(), lr=0.05, momentum=0.9)
private = model()
private_optimizer = torch.optim.SGD(private.parameters(), lr=0.05, momentum=0.9)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)
engine = PrivacyEngine(accountant="rdp")
private, private_optimizer, _ = engine.make_private(module=private, optimizer=private_optimizer, data_loader=loader,
                                                     noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False)
loss_function = torch.nn.CrossEntropyLoss()


def run(module, optimizer, count):
    start = time.perf_counter()
    for s in range(count):
        index = torch.randint(0, 60_000, (batch,))
        optimizer.zero_grad(set_to_none=True)
        loss_function(module(x[index]), y[index]).backward()
        optimizer.step()
    return (time.perf_counter() - start) / count


run(plain, plain_optimizer, 10)
run(private, private_optimizer, 10)
plain_times, private_times = [], []
for _ in range(rounds):
    plain_times.append(run(plain, plain_optimizer, steps))
    private_times.append(run(private, private_optimizer, steps))
ratios = [p / q for p, q in zip(private_times, plain_times)]
print(f"torch {torch.__version__}, opacus, {torch.get_num_threads()} threads, batch {batch}")
print(f"plain step {1e3 * statistics.median(plain_times):.2f} ms, DP-SGD step {1e3 * statistics.median(private_times):.2f} ms, "
      f"DP-SGD ÷ plain {statistics.median(ratios):.2f} (median of {rounds} rounds of {steps} steps)")
