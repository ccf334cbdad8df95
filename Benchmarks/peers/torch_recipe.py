"""A Backprop recipe in PyTorch, for time to accuracy side by side: the same
model (dense layers, ReLU, dropout after each hidden layer, input dropout),
AdamW with a linear warm-up then cosine annealing per step (Backprop's
`--lr-schedule cosine`), mirrored images half the time (`--augment flip`),
the same batches' size and epochs, on a Backprop dataset that stores its
validation split (and label smoothing, `--label-smoothing`; distillation from
a teacher file, `--teacher --distill-alpha --temperature`). Writes a metrics.csv with Backprop's columns (epoch,
validation_accuracy, test_accuracy, wall_time, …), which
Benchmarks/accuracy/time_to_accuracy.py reads. Not the same bits: PyTorch
draws its own initial weights, order, masks and mirrors.

    Benchmarks/peers/.venv/bin/python Benchmarks/peers/torch_recipe.py --data datasets/fashion-mnist-split.h5 \\
        --layers 784,512,512,10 --learning-rate 0.002 --weight-decay 0.05 --warmup-steps 200 --batch-size 256 \\
        --epochs 60 --dropout 0.25 --label-smoothing 0.1 --flip --output runs/torch-fast.csv
"""
import argparse
import math
import os
import time

import h5py
import numpy as np
import torch


def split(f, name):
    x = f[f"/{name}/x"]
    scale = float(x.attrs.get("scale", 1.0))
    return torch.from_numpy(x[()].astype(np.float32) * scale), torch.from_numpy(f[f"/{name}/y"][()].astype(np.int64))


def splits(path):
    """/train, /validation and /test of a Backprop dataset that stores its validation split: features scaled as stored, labels."""
    with h5py.File(path, "r") as f:
        if "validation" not in f:
            raise SystemExit(f"{path}: no /validation; make one with `backprop import … --validation-fraction 0.1`")
        return split(f, "train"), split(f, "validation"), split(f, "test")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--layers", default="784,512,512,10")
    p.add_argument("--learning-rate", type=float, default=0.002)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--input-dropout", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--flip", action="store_true")
    p.add_argument("--teacher", help="distil from this teacher file's probabilities over /train (backprop ensemble's layout)")
    p.add_argument("--distill-alpha", type=float, default=0.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=int(os.environ.get("PEER_THREADS", "2")))
    p.add_argument("--output", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (xt, yt), (xv, yv), (xs, ys) = splits(a.data)
    sizes = [int(s) for s in a.layers.split(",")]
    modules = [torch.nn.Dropout(a.input_dropout)] if a.input_dropout > 0 else []
    for l in range(len(sizes) - 1):
        modules.append(torch.nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2:
            modules.append(torch.nn.ReLU())
            if a.dropout > 0:
                modules.append(torch.nn.Dropout(a.dropout))
    model = torch.nn.Sequential(*modules)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.learning_rate, weight_decay=a.weight_decay)
    n = xt.shape[0]
    batches = math.ceil(n / a.batch_size)
    total = batches * a.epochs

    def rate(t):  # Backprop's cosine: η(t+1)/w during warm-up, then ½η(1 + cos(π(t − w)/(T − w)))
        if t < a.warmup_steps:
            return (t + 1) / a.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * min((t - a.warmup_steps) / max(total - a.warmup_steps, 1), 1)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    loss_function = torch.nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)  # (1 − ε) t + ε/K, as Backprop's
    soft = None
    if a.teacher:
        with h5py.File(a.teacher, "r") as f:
            soft = torch.from_numpy(f["/predictions/outputs"][()])
        if soft.shape[0] != xt.shape[0]:
            raise SystemExit(f"{a.teacher}: /predictions/outputs has {soft.shape[0]} rows, /train {xt.shape[0]}")
        # Backprop's tempered teacher: q_T = p^{1/T} / Σ p^{1/T} = softmax(log p / T).
        soft = torch.softmax(torch.log(soft.clamp_min(1e-30)) / a.temperature, dim=1)

    def objective(logits, index):  # E = α·T²·KL(q_T ‖ softmax(a/T)) + (1 − α)·CE, as Backprop's Loss.distillationErrors
        plain = loss_function(logits, yt[index])
        if soft is None:
            return plain
        q = soft[index]
        kl = (q * (torch.log(q.clamp_min(1e-30)) - torch.log_softmax(logits / a.temperature, dim=1))).sum(1).mean()
        return a.distill_alpha * a.temperature ** 2 * kl + (1 - a.distill_alpha) * plain

    def accuracy(x, y):
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x[i:i + 4096]).argmax(1) == y[i:i + 4096]).sum()) for i in range(0, x.shape[0], 4096))
        model.train()
        return correct / x.shape[0]

    start = time.perf_counter()
    with open(a.output, "w") as out:
        out.write("epoch,step,train_loss,validation_accuracy,test_accuracy,wall_time\n")
        step = 0
        for epoch in range(1, a.epochs + 1):
            order = torch.randperm(n)
            total_loss = 0.0
            for b in range(batches):
                index = order[b * a.batch_size:(b + 1) * a.batch_size]
                x = xt[index]
                if a.flip:
                    mirrored = torch.rand(x.shape[0]) < 0.5
                    images = x.view(-1, 28, 28)
                    x = torch.where(mirrored[:, None, None], images.flip(2), images).reshape(x.shape[0], -1)
                optimizer.zero_grad(set_to_none=True)
                loss = objective(model(x), index)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += loss.item() * x.shape[0]
                step += 1
            validation, test = accuracy(xv, yv), accuracy(xs, ys)
            out.write(f"{epoch},{step},{total_loss / n},{validation},{test},{time.perf_counter() - start}\n")
            out.flush()
            print(f"epoch {epoch}: validation {100 * validation:.2f} %, test {100 * test:.2f} %, {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
