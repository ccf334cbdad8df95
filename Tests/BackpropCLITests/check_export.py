#!/usr/bin/env python3
"""Loads Backprop's exported weights (Keras 3 .weights.h5 + model JSON, and
.npz), runs the forward pass in NumPy on a dataset's test split, and checks
it against `backprop predict`'s HDF5 output: same classes (for a classifier),
outputs within 1e-5 relative. Run by CLITests.export and CLITests.regression
(Debian's python3-h5py and python3-numpy).

    check_export.py PREFIX DATASET.h5 PREDICTIONS.h5"""
import json
import sys

import h5py
import numpy as np

ACTIVATIONS = {
    "relu": lambda a: np.maximum(a, 0),
    "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "linear": lambda a: a,
    "softmax": lambda a: (lambda e: e / e.sum(axis=1, keepdims=True))(np.exp(a - a.max(axis=1, keepdims=True))),
}


def keras_forward(prefix, x):
    model = json.load(open(prefix + ".json"))
    weights = h5py.File(prefix + ".weights.h5", "r")
    z = x
    for layer in model["config"]["layers"]:
        config = layer["config"]
        if layer["class_name"] == "Dense":
            kernel = weights[f"layers/{config['name']}/vars/0"][()]  # [in, out]
            bias = weights[f"layers/{config['name']}/vars/1"][()]
            z = ACTIVATIONS[config["activation"]](z @ kernel + bias)
        elif layer["class_name"] == "LeakyReLU":
            z = np.where(z > 0, z, config["negative_slope"] * z)
    return z


def layer_activations(prefix):
    """h of each Dense layer, from the model JSON (a LeakyReLU layer after a
    linear Dense is that Dense's activation)."""
    functions = []
    for layer in json.load(open(prefix + ".json"))["config"]["layers"]:
        if layer["class_name"] == "Dense":
            functions.append(ACTIVATIONS[layer["config"]["activation"]])
        elif layer["class_name"] == "LeakyReLU":
            slope = layer["config"]["negative_slope"]
            functions[-1] = lambda a, slope=slope: np.where(a > 0, a, slope * a)
    return functions


def npz_forward(prefix, x):
    state = np.load(prefix + ".npz")
    z = x
    for i, h in enumerate(layer_activations(prefix)):
        z = h(z @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"])
    return z


def expect_predictions(name, y, outputs, classes):
    """Exits unless `y` gives `backprop predict`'s classes and its outputs within 1e-5 relative."""
    error = (np.abs(y - outputs) / np.maximum(1, np.abs(outputs))).max()
    if classes is None:
        agree = 1
        print(f"{name}: {len(outputs)} regression outputs; max |Δy| / max(1, |y|) = {error:.2e}")
    else:
        agree = (y.argmax(axis=1) == classes).mean()
        print(f"{name}: classes agree on {agree:.4%} of {len(classes)} samples; max |Δy| / max(1, |y|) = {error:.2e}")
    if agree != 1 or error > 1e-5:
        sys.exit(f"{name} export does not match backprop predict")


def main():
    prefix, dataset, predictions = sys.argv[1:4]
    with h5py.File(dataset, "r") as f:
        x = f["test/x"][()].astype(np.float32)
        if "scale" in f["test/x"].attrs:  # bytes: x = scale · byte
            x *= f["test/x"].attrs["scale"]
    with h5py.File(predictions, "r") as f:
        classes = f["predictions/class"][()] if "predictions/class" in f else None
        outputs = f["predictions/outputs"][()]
    keras = keras_forward(prefix, x)
    numpy = npz_forward(prefix, x)
    for name, y in (("keras", keras), ("npz", numpy)):
        expect_predictions(name, y, outputs, classes)


if __name__ == "__main__":
    main()
