"""A convolutional teacher for `backprop train --teacher`: a small CNN trained
in PyTorch on a Backprop dataset's /train only (its stored /validation
chooses the epoch; /test is read once at the end, choosing nothing), whose
class probabilities over /train are saved as NumPy arrays and handed to
`backprop teach`, which writes the teacher file (docs/file-formats.md,
"Teacher"): its fingerprints, and the order of its views, are Backprop's own,
never computed here.

    Benchmarks/peers/.venv/bin/python Benchmarks/peers/cnn_teacher.py \\
        --data datasets/fashion-mnist-split.h5 --trained-on RUN/model.h5 --output runs/cnn-teacher.h5

--trained-on names a Backprop checkpoint of a run on the same file and split
(`backprop train --data FILE --epochs 0`): `backprop teach` records its rows,
so that a student with another split is refused; this script trains on
exactly those rows, /train of a file with a stored /validation. Ba & Caruana
(2014) and Urban et al. (2017) distil convolutional teachers into MLPs in the
same way.

--save keeps the trained members' weights; --load FILE trains nothing and
labels /train of --data with them instead: a refit of the members' rows
(their /train, then their /validation, which `backprop rechunk --refit`
writes), --trained-on still the run on the members' split.

Architecture: conv 5×5 (32) → ReLU → max-pool 2 → conv 5×5 (64) → ReLU →
max-pool 2 → dense 1024 → ReLU → dropout 0.5 → dense K (--channels,
--kernel and --hidden make it smaller); AdamW, cosine annealing per step,
mirrored images half the time (and shifted by up to --shift pixels). Not Backprop's bits:
PyTorch's own draws, threads and kernels.
"""
import argparse
import math
import os
import subprocess
import tempfile
import time

import h5py
import numpy as np
import torch

from torch_recipe import split, splits


def model(classes, channels=(32, 64), kernel=5, hidden=1024):
    first, second = channels
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, first, kernel, padding=kernel // 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(first, second, kernel, padding=kernel // 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(second * 7 * 7, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(hidden, classes))


@torch.no_grad()
def probabilities(net, x):
    net.eval()
    return torch.cat([torch.softmax(net(x[i:i + 1000]), dim=1) for i in range(0, len(x), 1000)])


def view_order(backprop, augment):
    """The views of `--augment AUGMENT` in a teacher's order, as Backprop states it
    (`backprop teach --view-order`): a list of (dy, dx, mirrored)."""
    result = subprocess.run([backprop, "teach", "--view-order", augment], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"--views {augment}: {result.stderr.strip()}")
    rows = [line.split(",") for line in result.stdout.splitlines()[1:]]
    return [(int(dy), int(dx), mirrored == "1") for _, dy, dx, mirrored in rows]


def view(x, dy, dx, mirrored, shift):
    """Backprop's augmentation (Sources/BackpropCore/Data/Augmentation.swift): out(y, x) = u(y − dy, x − dx),
    u the image mirrored left–right or not, 0 outside it."""
    u = x.flip(3) if mirrored else x
    padded = torch.nn.functional.pad(u, (shift, shift, shift, shift))
    h, w = x.shape[2], x.shape[3]
    return padded[:, :, shift - dy:shift - dy + h, shift - dx:shift - dx + w]


def view_probabilities(net, x, views):
    """[N, V, K]: the teacher on every view in `views` (Backprop's order, `view_order`)."""
    shift = max(max(abs(dy), abs(dx)) for dy, dx, _ in views)
    return torch.stack([probabilities(net, view(x, dy, dx, m, shift)) for dy, dx, m in views], dim=1)


def normalised(p):
    """Rows must sum to 1 within 1e-3 in float32: renormalised in double, then cast."""
    p = p.double()
    return (p / p.sum(-1, keepdim=True)).float().numpy()


def train_member(a, seed, classes, channels, train, validation, start):
    """One CNN of seed `seed`, trained on /train, with the weights of its best epoch on /validation."""
    (xt, yt), (xv, yv) = train, validation
    torch.manual_seed(seed)
    net = model(classes, channels, a.kernel, a.hidden)
    optimizer = torch.optim.AdamW(net.parameters(), lr=a.learning_rate, weight_decay=a.weight_decay)
    steps = a.epochs * math.ceil(len(xt) / a.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    generator = torch.Generator().manual_seed(seed)
    best, best_state = -1.0, None
    for epoch in range(1, a.epochs + 1):
        net.train()
        order = torch.randperm(len(xt), generator=generator)
        for i in range(0, len(xt), a.batch_size):
            index = order[i:i + a.batch_size]
            x = xt[index]
            flip = torch.rand(len(index), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            if a.shift:
                offsets = torch.randint(-a.shift, a.shift + 1, (len(index), 2), generator=generator)
                x = torch.stack([view(x[j:j + 1], int(dy), int(dx), False, a.shift)[0]
                                 for j, (dy, dx) in enumerate(offsets)])
            loss = torch.nn.functional.cross_entropy(net(x), yt[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        accuracy = (probabilities(net, xv).argmax(1) == yv).float().mean().item()
        print(f"seed {seed}, epoch {epoch}: validation {100 * accuracy:.2f} % ({time.time() - start:.0f} s)", flush=True)
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    print(f"seed {seed}: validation {100 * best:.2f} % (its best epoch's weights kept)", flush=True)
    return net


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backprop", default=".build/release/backprop", help="the backprop binary that writes the teacher file")
    p.add_argument("--data", required=True)
    p.add_argument("--trained-on", required=True, help="a Backprop checkpoint of a run on the teacher's training data and "
                   "its stored split (with --load: on the data the saved members trained on)")
    p.add_argument("--output", required=True)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--channels", default="32,64", help="the two convolutions' channels")
    p.add_argument("--kernel", type=int, choices=[3, 5], default=5)
    p.add_argument("--hidden", type=int, default=1024, help="the dense layer's width")
    p.add_argument("--shift", type=int, default=0, help="also shift each training image by up to this many pixels "
                   "each way (zeros shifted in), drawn per image")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=0.001)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, default=1, help="train this many CNNs (seeds SEED, SEED+1, …) and write the "
                   "mean of their probabilities: an ensemble teacher")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--views", help="also write --views-output: the same teacher with the probabilities of every image a "
                   "student with `--augment VIEWS` can draw (e.g. shift=1,flip), so that it labels what the student sees")
    p.add_argument("--views-output")
    p.add_argument("--save", help="also save the trained members' weights here (torch.save), for --load")
    p.add_argument("--load", help="train nothing: the members --save saved, which label /train of --data (e.g. a refit "
                   "of their rows: their /train, then their /validation)")
    a = p.parse_args()
    if a.shift < 0 or a.epochs < 1 or a.hidden < 1 or a.members < 1:
        raise SystemExit("--shift must be at least 0, --epochs, --hidden and --members at least 1")
    parts = a.channels.split(",")
    if len(parts) != 2 or not all(c.isdigit() and int(c) >= 1 for c in parts):
        raise SystemExit(f"--channels {a.channels}: give two positive counts, e.g. 32,64")
    channels = tuple(int(c) for c in parts)
    views = view_order(a.backprop, a.views) if a.views else None
    if bool(views) != bool(a.views_output):
        raise SystemExit("--views and --views-output go together")
    if a.load and a.save:
        raise SystemExit("--load trains nothing: give it without --save")
    torch.set_num_threads(a.threads)
    with h5py.File(a.data, "r") as f:
        if (f.attrs.get("image_height"), f.attrs.get("image_width")) != (28, 28):
            raise SystemExit(f"{a.data}: not 28×28 images; this CNN is made for them")
        if not a.load and "validation" not in f:
            raise SystemExit(f"{a.data}: no stored /validation to choose the epoch on (`backprop import … --validation-fraction`)")
    start = time.time()
    if a.load:
        try:
            saved = torch.load(a.load)
            saved["members"], saved["names"], saved["classes"], saved["channels"], saved["kernel"], saved["hidden"]
        except Exception as error:
            raise SystemExit(f"{a.load}: not the members' weights that --save writes ({error})")
        members = []
        for state in saved["members"]:
            net = model(saved["classes"], saved["channels"], saved["kernel"], saved["hidden"])
            net.load_state_dict(state)
            members.append(net)
        names = saved["names"]
        with h5py.File(a.data, "r") as f:
            (xt, yt), (xs, ys) = ((x.reshape(-1, 1, 28, 28), y) for x, y in (split(f, "train"), split(f, "test")))
        validation = None
    else:
        (xt, yt), (xv, yv), (xs, ys) = ((x.reshape(-1, 1, 28, 28), y) for x, y in splits(a.data))
        classes = int(yt.max()) + 1
        members = [train_member(a, a.seed + m, classes, channels, (xt, yt), (xv, yv), start) for m in range(a.members)]
        names = [f"cnn_teacher.py seed {a.seed + m}, {a.epochs} epochs, channels {a.channels}, kernel {a.kernel}, "
                 f"hidden {a.hidden}, shift {a.shift}" for m in range(a.members)]
        if a.save:
            torch.save({"members": [net.state_dict() for net in members], "names": names, "classes": classes,
                        "channels": channels, "kernel": a.kernel, "hidden": a.hidden}, a.save)
    # The ensemble's probability is the members' mean, as `backprop ensemble` averages its checkpoints'.
    mean = lambda ps: sum(ps[1:], ps[0]) / len(ps)
    accuracy = lambda x, y: (mean([probabilities(net, x) for net in members]).argmax(1) == y).float().mean().item()
    train_p = mean([probabilities(net, xt) for net in members])
    train = (train_p.argmax(1) == yt).float().mean().item()
    if not a.load:
        validation = accuracy(xv, yv)
    test = accuracy(xs, ys)
    outputs = normalised(train_p)
    who = "the CNN's" if len(members) == 1 else f"the {len(members)} CNNs' ensemble's"

    def write(path, view_outputs=None):
        """Hands the arrays to `backprop teach`, which writes the teacher file atomically."""
        with tempfile.TemporaryDirectory() as work:
            np.save(os.path.join(work, "probabilities.npy"), outputs)
            command = [a.backprop, "teach", "--data", a.data, "--trained-on", a.trained_on, "--output", path,
                       "--probabilities", os.path.join(work, "probabilities.npy")]
            if view_outputs is not None:
                np.save(os.path.join(work, "views.npy"), view_outputs)
                command += ["--views", os.path.join(work, "views.npy"), "--augment", a.views]
            for name in names:
                command += ["--member", name]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"backprop teach: {result.stderr.strip()}")

    write(a.output)
    seen = "" if validation is None else f"validation {100 * validation:.2f} %, "
    print(f"wrote {a.output}: {who} accuracy /train {100 * train:.2f} %, {seen}"
          f"test {100 * test:.2f} % (reported, choosing nothing); {time.time() - start:.0f} s", flush=True)
    if views:
        write(a.views_output, normalised(mean([view_probabilities(net, xt, views) for net in members])))
        print(f"wrote {a.views_output}: the same teacher with the {len(views)} views of --augment {a.views}; "
              f"{time.time() - start:.0f} s")

if __name__ == "__main__":
    main()
