"""Loads a `backprop export --format keras` model in Keras 3 as the README
shows (model_from_json, then load_weights) and compares its predictions on a
dataset's test split with `backprop predict`'s.

usage: check_keras.py PREFIX DATASET.h5 PREDICTIONS.h5
Prints the largest difference; exits 1 if it exceeds 1e-5."""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

prefix, dataset, predictions = sys.argv[1:4]
model = keras.models.model_from_json(open(prefix + ".json").read())
model.load_weights(prefix + ".weights.h5")
with h5py.File(dataset, "r") as f:
    x = f["test/x"][()].astype(np.float32)
    if "scale" in f["test/x"].attrs:
        x *= np.float32(f["test/x"].attrs["scale"])
with h5py.File(predictions, "r") as f:
    expected = f["predictions/outputs"][()]
outputs = np.asarray(model.predict(x, verbose=0))
difference = float(np.abs(outputs - expected).max())
print(f"keras {keras.__version__} ({keras.backend.backend()}): largest difference {difference:.3g}")
sys.exit(0 if difference <= 1e-5 else 1)
