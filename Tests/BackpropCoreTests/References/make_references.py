"""Reference numbers for BackpropCoreTests/ReferenceTests.swift.

A tiny MLP (4-5-3, ReLU, softmax cross-entropy, mean reduction over a batch of
6) written out by hand in NumPy, float64, following torch.optim's update
rules; two steps of each optimizer from the same start. The Swift tests read
references.json and never recompute these numbers.

Run:  python3 make_references.py > references.json
Made with Python 3.11.7 and NumPy 2.4.6 (another NumPy may differ in the last bit of a value).
"""
import json

import numpy as np

rng = np.random.default_rng(20261123)
sizes = [4, 5, 3]
batch = 6
# float32-representable starting values, so Swift's Float start is identical.
x = rng.normal(size=(batch, sizes[0])).astype(np.float32).astype(np.float64)
labels = np.array([0, 2, 1, 2, 0, 1])
t = np.eye(sizes[-1])[labels]
w = [rng.uniform(-0.5, 0.5, size=(sizes[l + 1], sizes[l])).astype(np.float32).astype(np.float64) for l in range(2)]
b = [rng.uniform(-0.1, 0.1, size=sizes[l + 1]).astype(np.float32).astype(np.float64) for l in range(2)]


def flatten(ws, bs):
    return np.concatenate([np.concatenate([wl.ravel(), bl]) for wl, bl in zip(ws, bs)])


def unflatten(theta):
    ws, bs, offset = [], [], 0
    for l in range(2):
        n_out, n_in = sizes[l + 1], sizes[l]
        ws.append(theta[offset:offset + n_out * n_in].reshape(n_out, n_in)); offset += n_out * n_in
        bs.append(theta[offset:offset + n_out]); offset += n_out
    return ws, bs


def loss_and_gradient(theta):
    """Mean cross-entropy and its gradient, backpropagated by hand."""
    ws, bs = unflatten(theta)
    a1 = x @ ws[0].T + bs[0]
    z1 = np.maximum(a1, 0)
    a2 = z1 @ ws[1].T + bs[1]
    a2 = a2 - a2.max(axis=1, keepdims=True)
    y = np.exp(a2) / np.exp(a2).sum(axis=1, keepdims=True)
    loss = -(t * np.log(y)).sum() / batch
    d2 = (y - t) / batch                      # δ_k = y_k − t_k, mean reduction
    d1 = (d2 @ ws[1]) * (a1 > 0)              # δ_j = h'(a_j) Σ_k w_kj δ_k
    grads_w = [d1.T @ x, d2.T @ z1]
    grads_b = [d1.sum(axis=0), d2.sum(axis=0)]
    return loss, flatten(grads_w, grads_b)


def sgd(settings):
    lr, wd, nesterov = settings["learningRate"], settings["weightDecay"], settings["kind"] == "nesterov"
    mu = 0.0 if settings["kind"] == "sgd" else settings["momentum"]  # plain SGD: v = g
    theta, v, out = flatten(w, b), None, []
    for _ in range(2):
        g = loss_and_gradient(theta)[1] + wd * theta
        v = g.copy() if v is None else mu * v + g
        theta = theta - lr * (g + mu * v if nesterov else v)
        out.append(theta.tolist())
    return out


def adam(settings):
    lr, b1, b2, eps, wd = (settings[k] for k in ["learningRate", "beta1", "beta2", "epsilon", "weightDecay"])
    decoupled = settings["kind"] == "adamw"
    theta = flatten(w, b)
    m, v, out = np.zeros_like(theta), np.zeros_like(theta), []
    for step in range(1, 3):
        g = loss_and_gradient(theta)[1]
        if decoupled:
            theta = theta - lr * wd * theta
        else:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** step), v / (1 - b2 ** step)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta.tolist())
    return out


def rmsprop(settings):
    """torch.optim.RMSprop: square_avg, optional centring (grad_avg) and momentum buffer."""
    lr, alpha, eps, wd, mu = (settings[k] for k in ["learningRate", "alpha", "epsilon", "weightDecay", "momentum"])
    centered = settings["centered"]
    theta = flatten(w, b)
    v, average, buffer, out = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta), []
    for _ in range(2):
        g = loss_and_gradient(theta)[1] + wd * theta
        v = alpha * v + (1 - alpha) * g * g
        mean_square = v
        if centered:
            average = alpha * average + (1 - alpha) * g
            mean_square = v - average * average
        denominator = np.sqrt(mean_square) + eps
        if mu > 0:
            buffer = mu * buffer + g / denominator
            theta = theta - lr * buffer
        else:
            theta = theta - lr * g / denominator
        out.append(theta.tolist())
    return out


def adagrad(settings):
    """torch.optim.Adagrad: η_t = η / (1 + (t − 1) decay), s ← s + g², w ← w − η_t g / (√s + ε)."""
    lr, decay, start, eps, wd = (settings[k] for k in ["learningRate", "learningRateDecay", "initialAccumulator", "epsilon", "weightDecay"])
    theta = flatten(w, b)
    total, out = np.full_like(theta, start), []
    for step in range(1, 3):
        g = loss_and_gradient(theta)[1] + wd * theta
        rate = lr / (1 + (step - 1) * decay)
        total = total + g * g
        theta = theta - rate * g / (np.sqrt(total) + eps)
        out.append(theta.tolist())
    return out


base = {"momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
cases = [
    dict(base, kind="sgd", learningRate=0.1, weightDecay=0.0),
    dict(base, kind="momentum", learningRate=0.1, weightDecay=0.01),
    dict(base, kind="nesterov", learningRate=0.1, weightDecay=0.01),
    dict(base, kind="adam", learningRate=0.01, weightDecay=0.01),
    dict(base, kind="adamw", learningRate=0.01, weightDecay=0.1),
    dict(base, kind="rmsprop", learningRate=0.01, weightDecay=0.01, momentum=0.5, alpha=0.9, centered=True),
    dict(base, kind="adagrad", learningRate=0.1, weightDecay=0.01, epsilon=1e-10, learningRateDecay=0.5, initialAccumulator=0.1),
]
RULES = {"sgd": sgd, "momentum": sgd, "nesterov": sgd, "adam": adam, "adamw": adam, "rmsprop": rmsprop, "adagrad": adagrad}
loss, gradient = loss_and_gradient(flatten(w, b))
print(json.dumps({
    "sizes": sizes,
    "inputs": x.ravel().tolist(),
    "labels": labels.tolist(),
    "parameters": flatten(w, b).tolist(),
    "meanLoss": loss,
    "meanGradient": gradient.tolist(),
    "optimizers": [{"settings": c, "steps": RULES[c["kind"]](c)} for c in cases],
}, indent=1))
