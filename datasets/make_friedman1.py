"""Writes datasets/friedman1.csv: Friedman's first regression problem
(J. H. Friedman, "Multivariate adaptive regression splines", 1991).

Ten features x_i ~ U[0, 1], of which only the first five matter:
    y = 10 sin(π x1 x2) + 20 (x3 − 0.5)² + 10 x4 + 5 x5 + ε,  ε ~ N(0, 1)
so no model can beat an RMSE of about 1.0, predicting the mean gives about 4.9,
and a linear model about 2.5. Seeded: the file is the same on every machine.

    python3 datasets/make_friedman1.py [SAMPLES]
"""
import sys

import numpy as np

samples = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
rng = np.random.default_rng(1991)
x = rng.uniform(0, 1, (samples, 10))
y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
     + 10 * x[:, 3] + 5 * x[:, 4] + rng.normal(0, 1, samples))
with open("datasets/friedman1.csv", "w") as f:
    f.write(",".join([f"x{i + 1}" for i in range(10)] + ["y"]) + "\n")
    for row, target in zip(x, y):
        f.write(",".join(f"{v:.6f}" for v in row) + f",{target:.6f}\n")
print(f"wrote datasets/friedman1.csv: {samples} samples, y mean {y.mean():.3f}, std {y.std():.3f}")
