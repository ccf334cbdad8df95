#!/usr/bin/env python3
"""The malformed-file corpus: every way a dataset or checkpoint can be broken
that Backprop must refuse cleanly. Used by the corpus test
(Tests/BackpropCLITests/CorpusTests.swift) and as the fuzzer's seeds.

    make_corpus.py dataset OUT.h5                      # a small valid dataset (20 train, 6 test, 5 features, 3 classes)
    make_corpus.py corpus --dataset D --checkpoint C --out DIR

`corpus` writes DIR/<case>.h5 for each case and DIR/manifest.json: for each
file, whether it is read as a dataset or a checkpoint and a fragment the error
message must contain. The checkpoint C must be a valid one for network 5-4-3
(`backprop train --data D --layers 5,4,3 --epochs 1 --output C`).
Needs h5py and NumPy (Debian: python3-h5py, python3-numpy)."""
import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np


def write_dataset(path, train=20, test=6, features=5, classes=3):
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = np.bytes_(b"backprop-dataset")  # fixed-length, as Backprop writes
        for name, count in (("train", train), ("test", test)):
            x = f.create_dataset(f"{name}/x", data=rng.integers(0, 256, (count, features), dtype=np.uint8))
            x.attrs["scale"] = np.float32(1 / 255)
            f.create_dataset(f"{name}/y", data=rng.integers(0, classes, count, dtype=np.uint8))


def replace(f, name, data, **kwargs):
    """Replaces dataset `name` with `data`, keeping its attributes."""
    attributes = dict(f[name].attrs) if name in f else {}
    del f[name]
    d = f.create_dataset(name, data=data, **kwargs)
    for key, value in attributes.items():
        d.attrs[key] = value
    return d


def poke(path, dataset, data_offset, value):
    """Overwrites bytes inside a dataset's raw data, in the file itself."""
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
    with open(path, "r+b") as raw:
        raw.seek(offset + data_offset)
        raw.write(value)


def make_corpus(dataset, checkpoint, out):
    out.mkdir(parents=True, exist_ok=True)
    manifest = []

    def case(name, kind, expect, source=None, edit=None, raw=None):
        path = out / f"{name}.h5"
        if raw is not None:
            path.write_bytes(raw)
        else:
            shutil.copyfile(source, path)
            if edit is not None:
                edit(path)
        manifest.append({"file": path.name, "kind": kind, "expect": expect})

    def h5edit(function):
        def edit(path):
            with h5py.File(path, "a") as f:
                function(f)
        return edit

    def truncate(fraction_or_bytes):
        def edit(path):
            data = path.read_bytes()
            keep = fraction_or_bytes if isinstance(fraction_or_bytes, int) else int(len(data) * fraction_or_bytes)
            path.write_bytes(data[:keep])
        return edit

    def flip(offset):
        def edit(path):
            data = bytearray(path.read_bytes())
            data[offset] ^= 0xFF
            path.write_bytes(bytes(data))
        return edit

    D, C = "dataset", "checkpoint"
    # Not HDF5 at all.
    for kind in (D, C):
        case(f"empty-{kind}", kind, "not an HDF5 file", raw=b"")
        case(f"text-{kind}", kind, "not an HDF5 file", raw=b"this is not an HDF5 file\n" * 40)
    # Truncated at several offsets, and flipped bytes in the superblock.
    for kind, source in ((D, dataset), (C, checkpoint)):
        for keep in (64, 512, 0.5, 0.9):
            label = keep if isinstance(keep, int) else f"{int(keep * 100)}pct"
            case(f"truncated-{label}-{kind}", kind, "", source, truncate(keep))
        case(f"superblock-signature-{kind}", kind, "not an HDF5 file", source, flip(1))
        case(f"superblock-version-{kind}", kind, "", source, flip(8))
        case(f"superblock-addresses-{kind}", kind, "", source, flip(40))
    # Flipped bytes in the data: a label far out of range; a weight turned NaN.
    case("data-label-byte", D, "label", dataset, lambda p: poke(p, "train/y", 3, b"\xff"))
    case("data-weight-bytes", C, "finite", checkpoint, lambda p: poke(p, "model/layers/0/weight", 4, b"\xff\xff\xff\xff"))

    # Datasets: wrong types, ranks and sizes.
    case("x-float64", D, "/train/x", dataset, h5edit(lambda f: replace(f, "train/x", f["train/x"][()].astype(np.float64))))
    case("x-nan-float", D, "/train/x", dataset, h5edit(lambda f: replace(f, "train/x", np.full((20, 5), np.nan, np.float32))))
    # Regression targets (float32 [N, K]): ranks, values, and splits that disagree.
    case("y-float-rank-1", D, "/train/y", dataset, h5edit(lambda f: replace(f, "train/y", np.zeros(20, np.float32))))
    case("y-target-inf", D, "/train/y", dataset, h5edit(lambda f: replace(f, "train/y", np.full((20, 1), np.inf, np.float32))))
    case("y-target-rows-differ", D, "/train/y", dataset, h5edit(lambda f: replace(f, "train/y", np.zeros((19, 1), np.float32))))
    case("y-kinds-differ", D, "/test/y", dataset, h5edit(lambda f: replace(f, "train/y", np.zeros((20, 1), np.float32))))
    case("y-target-widths-differ", D, "/test/y", dataset, h5edit(lambda f: (replace(f, "train/y", np.zeros((20, 1), np.float32)),
                                                                             replace(f, "test/y", np.zeros((6, 2), np.float32)))))
    case("y-float64", D, "/train/y", dataset, h5edit(lambda f: replace(f, "train/y", f["train/y"][()].astype(np.float64))))
    case("x-rank-1", D, "/train/x", dataset, h5edit(lambda f: replace(f, "train/x", np.zeros(100, np.uint8))))
    case("y-rank-2", D, "/train/y", dataset, h5edit(lambda f: replace(f, "train/y", np.zeros((20, 1), np.uint8))))
    case("x-zero-rows", D, "/train", dataset, h5edit(lambda f: (replace(f, "train/x", np.zeros((0, 5), np.uint8)),
                                                                 replace(f, "train/y", np.zeros(0, np.uint8)))))
    case("x-zero-features", D, "/train/x", dataset, h5edit(lambda f: replace(f, "train/x", np.zeros((20, 0), np.uint8))))
    case("x-shape-bomb", D, "/train/x", dataset, h5edit(lambda f: replace(
        f, "train/x", None, shape=(1 << 40, 5), dtype=np.uint8, chunks=(1024, 5))))
    case("labels-out-of-range", D, "label", dataset, h5edit(lambda f: replace(f, "train/y", np.full(20, 9, np.uint8))))
    case("lengths-differ", D, "/train/y", dataset, h5edit(lambda f: replace(f, "train/y", np.zeros(7, np.uint8))))
    case("features-differ", D, "/test/x", dataset, h5edit(lambda f: replace(f, "test/x", np.zeros((6, 4), np.uint8))))
    case("scale-nan", D, "scale", dataset, h5edit(lambda f: f["train/x"].attrs.__setitem__("scale", np.float32(np.nan))))
    case("scale-missing", D, "scale", dataset, h5edit(lambda f: f["train/x"].attrs.__delitem__("scale")))
    # 255 × scale beyond float32: the largest feature would be infinite.
    case("scale-overflows", D, "beyond float32", dataset, h5edit(lambda f: f["train/x"].attrs.__setitem__("scale", np.float32(1e37))))
    case("missing-train", D, "/train", dataset, h5edit(lambda f: f.__delitem__("train")))
    case("missing-test-y", D, "/test/y", dataset, h5edit(lambda f: f["test"].__delitem__("y")))
    case("wrong-format", D, "format", dataset, h5edit(lambda f: f.attrs.__setitem__("format", np.bytes_(b"something-else"))))

    # Links and storage that point outside the file, for both kinds.
    def external_storage(name, shape, dtype):
        def edit(f):
            side = out / "external-storage.bin"
            np.zeros(shape, dtype).tofile(side)
            attributes = dict(f[name].attrs)
            del f[name]
            d = f.create_dataset(name, shape=shape, dtype=dtype, external=[(str(side), 0, h5py.h5f.UNLIMITED)])
            for key, value in attributes.items():
                d.attrs[key] = value
        return edit

    def virtual(name, source_name):
        def edit(f):
            source = f[source_name]
            layout = h5py.VirtualLayout(shape=source.shape, dtype=source.dtype)
            layout[...] = h5py.VirtualSource(source)
            attributes = dict(f[name].attrs)
            del f[name]
            d = f.create_virtual_dataset(name, layout)
            for key, value in attributes.items():
                d.attrs[key] = value
        return edit

    case("soft-link", D, "link", dataset, h5edit(lambda f: (f.__delitem__("test/x"), f["test"].__setitem__("x", h5py.SoftLink("/train/x")))))
    case("external-link", D, "link", dataset, h5edit(lambda f: (f.__delitem__("test/x"),
                                                                 f["test"].__setitem__("x", h5py.ExternalLink("other.h5", "/train/x")))))
    case("external-storage", D, "external", dataset, h5edit(external_storage("train/x", (20, 5), np.uint8)))
    case("virtual", D, "virtual", dataset, h5edit(virtual("test/y", "test/y")))
    case("checkpoint-soft-link", C, "link", checkpoint, h5edit(lambda f: (f.__delitem__("model/layers/1/bias"),
                                                                          f["model/layers/1"].__setitem__("bias", h5py.SoftLink("/model/layers/0/bias")))))
    case("checkpoint-external-storage", C, "external", checkpoint, h5edit(external_storage("model/layers/1/bias", (3,), np.float32)))

    # Checkpoints: format, version, layers, values, state.
    case("newer-version", C, "version 99", checkpoint, h5edit(lambda f: f.attrs.__setitem__("format_version", np.int64(99))))
    case("version-1", C, "version 1", checkpoint, h5edit(lambda f: f.attrs.__setitem__("format_version", np.int64(1))))
    # Variable-length strings live in the global heap, which libhdf5 1.10.8 can
    # loop on (a fuzzer finding): refused before they are read.
    case("variable-length-string", C, "variable-length", checkpoint,
         h5edit(lambda f: f["model"].attrs.__setitem__("loss", "cross-entropy")))
    case("missing-format", C, "non-checkpoint", checkpoint, h5edit(lambda f: f.attrs.__delitem__("format")))
    case("layers-do-not-chain", C, "/model/layers/1/weight", checkpoint,
         h5edit(lambda f: replace(f, "model/layers/1/weight", np.zeros((3, 6), np.float32))))
    case("weight-nan", C, "finite", checkpoint, h5edit(lambda f: replace(f, "model/layers/0/weight", np.full((4, 5), np.nan, np.float32))))
    case("bias-inf", C, "finite", checkpoint, h5edit(lambda f: replace(f, "model/layers/1/bias", np.full(3, np.inf, np.float32))))
    case("weight-rank-1", C, "/model/layers/0/weight", checkpoint, h5edit(lambda f: replace(f, "model/layers/0/weight", np.zeros(20, np.float32))))
    # Found by the fuzzer: a NaN epoch number crashed its conversion to Int.
    case("epoch-number-nan", C, "/metrics/epochs/epoch", checkpoint,
         h5edit(lambda f: replace(f, "metrics/epochs/epoch", np.full(f["metrics/epochs/epoch"].shape, np.nan))))
    case("step-number-huge", C, "/metrics/epochs/step", checkpoint,
         h5edit(lambda f: replace(f, "metrics/epochs/step", np.full(f["metrics/epochs/step"].shape, 1e300))))
    case("weight-float64", C, "/model/layers/0/weight", checkpoint,
         h5edit(lambda f: replace(f, "model/layers/0/weight", np.zeros((4, 5), np.float64))))
    def layer_bomb(f):
        # Shapes that chain, 5 → 2^30 → 3: 9.6 billion parameters declared in a few kilobytes.
        replace(f, "model/layers/0/weight", None, shape=(1 << 30, 5), dtype=np.float32, chunks=(1024, 5))
        replace(f, "model/layers/0/bias", None, shape=(1 << 30,), dtype=np.float32, chunks=(1024,))
        replace(f, "model/layers/1/weight", None, shape=(3, 1 << 30), dtype=np.float32, chunks=(3, 1024))
    case("weight-shape-bomb", C, "more than the limit", checkpoint, h5edit(layer_bomb))
    case("unknown-activation", C, "swish", checkpoint, h5edit(lambda f: f["model/layers/0"].attrs.__setitem__("activation", np.bytes_(b"swish"))))
    case("unknown-loss", C, "loss", checkpoint, h5edit(lambda f: f["model"].attrs.__setitem__("loss", np.bytes_(b"hinge"))))
    case("missing-layers", C, "/model/layers/0", checkpoint, h5edit(lambda f: f.__delitem__("model/layers")))
    case("missing-velocity", C, "/optimizer/velocity", checkpoint, h5edit(lambda f: f.__delitem__("optimizer/velocity")))
    case("velocity-wrong-shape", C, "/optimizer/velocity/layers/0/weight", checkpoint,
         h5edit(lambda f: replace(f, "optimizer/velocity/layers/0/weight", np.zeros((5, 4), np.float32))))
    case("order-not-permutation", C, "/progress/order", checkpoint,
         h5edit(lambda f: replace(f, "progress/order", np.zeros(20, np.int32))))
    case("position-outside", C, "/progress", checkpoint, h5edit(lambda f: f["progress"].attrs.__setitem__("batch", np.int64(1000))))
    case("configuration-garbage", C, "configuration", checkpoint,
         h5edit(lambda f: f["training"].attrs.__setitem__("configuration", np.bytes_(b"{not json"))))
    # Settings in /training a resume would use: out of range, or naming another model than /model holds.
    def setting(keys, value):
        def edit(f):
            configuration = json.loads(f["training"].attrs["configuration"])
            inner = configuration
            for key in keys[:-1]:
                inner = inner[key]
            inner[keys[-1]] = value
            f["training"].attrs["configuration"] = np.bytes_(json.dumps(configuration).encode())
        return h5edit(edit)
    for keys, value, expect in ((["batchSize"], 0, "batch size: 0 is not"), (["workers"], 100000, "workers: 100000 is not"),
                                (["shardSize"], -1, "shard size: -1 is not"), (["steps"], 0, "steps: 0 is not"),
                                (["optimizer", "momentum"], 2, "momentum: 2.0 is not"), (["optimizer", "beta2"], 1, "beta2: 1.0 is not"),
                                (["optimizer", "epsilon"], 0, "epsilon: 0.0 is not"), (["schedule", "base"], -1, "learning rate"),
                                (["sizes"], [5, 4, 4], "names the model 5-4-4"),
                                (["hiddenActivation"], "tanh", "(tanh, softmax; cross-entropy)")):
        case(f"configuration-{'-'.join(keys)}", C, expect, checkpoint, setting(keys, value))

    # Class names: not JSON, too few for the labels, twice the same; a checkpoint's for another output width.
    def names(value, where="/"):
        return h5edit(lambda f: f[where].attrs.__setitem__("class_names", np.bytes_(value)))
    case("class-names-not-json", D, "class_names", dataset, names(b"cat, dog"))
    case("class-names-too-few", D, "names 2 classes", dataset, names(b'["a", "b"]'))
    case("class-names-twice", D, "names a class twice", dataset, names(b'["a", "b", "a"]'))
    case("class-names-checkpoint-width", C, "the model has 3 outputs", checkpoint, names(b'["a", "b"]', "/data"))

    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "dataset":
        write_dataset(sys.argv[2])
    elif len(sys.argv) == 8 and sys.argv[1] == "corpus":
        options = dict(zip(sys.argv[2::2], sys.argv[3::2]))
        manifest = make_corpus(options["--dataset"], options["--checkpoint"], Path(options["--out"]))
        print(f"{len(manifest)} malformed files in {options['--out']}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
