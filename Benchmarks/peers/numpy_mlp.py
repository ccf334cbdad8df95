"""The reference workload in NumPy: hand-written backpropagation, every
matrix product on NumPy's BLAS (OpenBLAS), PEER_THREADS threads (default 2)."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ.get("PEER_THREADS", "2"))
import numpy as np  # noqa: E402

import common  # noqa: E402


def main():
    args = common.arguments(__doc__)
    x, scale, y, layers, order = common.load(args)
    w = [W.astype(np.float32) for W, _ in layers]
    b = [bias.astype(np.float32) for _, bias in layers]
    vw = [np.zeros_like(W) for W in w]
    vb = [np.zeros_like(v) for v in b]
    eta, mu = np.float32(common.LEARNING_RATE), np.float32(common.MOMENTUM)

    def step(indices):
        z = [x[indices].astype(np.float32) * np.float32(scale)]
        for l in range(len(w)):
            a = z[-1] @ w[l].T + b[l]
            z.append(np.maximum(a, 0) if l < len(w) - 1 else a)
        a = z[-1]
        a = a - a.max(axis=1, keepdims=True)
        y_hat = np.exp(a)
        y_hat /= y_hat.sum(axis=1, keepdims=True)
        delta = y_hat
        delta[np.arange(len(indices)), y[indices]] -= 1  # δ_k = y_k − t_k
        delta /= np.float32(len(indices))  # mean reduction
        for l in range(len(w) - 1, -1, -1):
            gw = delta.T @ z[l]
            gb = delta.sum(axis=0)
            if l > 0:
                delta = (delta @ w[l]) * (z[l] > 0)
            vw[l] *= mu
            vw[l] += gw
            w[l] -= eta * vw[l]
            vb[l] *= mu
            vb[l] += gb
            b[l] -= eta * vb[l]

    common.measure("numpy", args, order, step, threads=int(os.environ["OPENBLAS_NUM_THREADS"]))


if __name__ == "__main__":
    main()
