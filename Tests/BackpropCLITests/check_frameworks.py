"""Loads a `backprop export` in the framework it is for, as the README shows,
and compares its predictions on a dataset's test split with `backprop
predict`'s: --format keras in Keras 3 (model_from_json, then load_weights),
--format npz in PyTorch (load_state_dict, strict, into a module whose
`layers` is a ModuleList of Linear layers).

usage: check_frameworks.py keras|npz PREFIX DATASET.h5 PREDICTIONS.h5 [ACTIVATION]
Prints the largest difference; exits 1 if it exceeds 1e-5."""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

kind, prefix, dataset, predictions = sys.argv[1:5]
activation = sys.argv[5] if len(sys.argv) > 5 else "relu"
with h5py.File(dataset, "r") as f:
    x = f["test/x"][()].astype(np.float32)
    if "scale" in f["test/x"].attrs:
        x *= np.float32(f["test/x"].attrs["scale"])
with h5py.File(predictions, "r") as f:
    expected = f["predictions/outputs"][()]

if kind == "keras":
    import keras

    model = keras.models.model_from_json(open(prefix + ".json").read())
    model.load_weights(prefix + ".weights.h5")
    outputs = np.asarray(model.predict(x, verbose=0))
    name = f"keras {keras.__version__} ({keras.backend.backend()})"
else:
    import torch

    state = {k: torch.from_numpy(v) for k, v in np.load(prefix + ".npz").items()}
    sizes = [state["layers.0.weight"].shape[1]] + [state[f"layers.{i}.weight"].shape[0] for i in range(len(state) // 2)]
    hidden = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
              "leaky-relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01)}[activation]

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

        def forward(self, z):
            for layer in self.layers[:-1]:
                z = hidden(layer(z))
            return torch.softmax(self.layers[-1](z), dim=1)

    model = MLP()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        outputs = model(torch.from_numpy(x)).numpy()
    name = f"torch {torch.__version__}"

difference = float(np.abs(outputs - expected).max())
print(f"{name}: largest difference {difference:.3g}")
sys.exit(0 if difference <= 1e-5 else 1)
