#!/usr/bin/env python3
"""Runs Backprop's ONNX export in ONNX Runtime on a dataset's test split and
checks it against `backprop predict`'s HDF5 output (same classes for a
classifier, outputs within 1e-5 relative), and the model's declared input,
output and metadata. Run by PredictExportCLITests.onnx with the Python of
.venv (ONNX Runtime from PyPI, NumPy and h5py from Debian).

    check_onnx.py MODEL.onnx DATASET.h5 PREDICTIONS.h5 [raw SCALED.onnx]

With raw, MODEL takes raw bytes and must give SCALED's outputs (to 1e-6)."""
import json
import sys

import h5py
import numpy as np
import onnx
import onnxruntime

from check_export import expect_predictions


def main():
    model, dataset, predictions = sys.argv[1:4]
    raw = len(sys.argv) > 4 and sys.argv[4] == "raw"
    with h5py.File(dataset, "r") as f:
        x = f["test/x"][()].astype(np.float32)
        scale = f["test/x"].attrs.get("scale")
    if scale is not None and not raw:
        x *= np.float32(scale)  # bytes: x = scale · byte, as training saw them
    with h5py.File(predictions, "r") as f:
        classes = f["predictions/class"][()] if "predictions/class" in f else None
        outputs = f["predictions/outputs"][()]

    onnx.checker.check_model(onnx.load(model), full_check=True)
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (given,), (taken,) = session.get_inputs(), session.get_outputs()
    assert given.name == ("x_raw" if raw else "x"), given.name
    assert given.type == "tensor(float)" and given.shape[1] == x.shape[1] and isinstance(given.shape[0], str), given
    assert taken.name in ("probabilities", "y"), taken.name
    assert (taken.name == "probabilities") == ("softmax" in session.get_modelmeta().custom_metadata_map["output"]), taken.name
    metadata = session.get_modelmeta().custom_metadata_map
    for key in ("backprop_version", "parameter_fingerprint", "input", "output"):
        assert key in metadata, f"metadata lacks {key}: {metadata}"
    if scale is not None:
        assert abs(float(metadata["input_scale"]) - float(scale)) <= 1e-7 * float(scale), metadata
    if "class_names" in metadata:
        assert len(json.loads(metadata["class_names"])) == outputs.shape[1], metadata

    # Any batch size: the whole split, then one sample.
    y = session.run(None, {given.name: x})[0]
    single = session.run(None, {given.name: x[:1]})[0]
    expect_predictions("onnx", y, outputs, classes)
    if np.abs(single - y[:1]).max() > 1e-6:
        sys.exit("the ONNX export gives one sample other outputs than a batch")
    if raw:
        scaled = onnxruntime.InferenceSession(sys.argv[5], providers=["CPUExecutionProvider"])
        z = scaled.run(None, {"x": x * np.float32(scale)})[0]
        difference = (np.abs(y - z) / np.maximum(1, np.abs(z))).max()
        print(f"raw against scaled: max |Δy| / max(1, |y|) = {difference:.2e}")
        if difference > 1e-6:
            sys.exit("the raw-input export does not match the scaled one")


if __name__ == "__main__":
    main()
