"""The reference workload in JAX as its users write it: the loss written
out, jax.grad, the momentum update (PyTorch's convention) in the same
jit-compiled step, the parameters and velocity donated to it (updated in
place), and steps dispatched asynchronously: synchronised once per timed
window, not after every step. On CPU. With --precision bf16 the products
take bf16 operands (the parameters and activations cast where they enter
a product) and give fp32 results (preferred_element_type), the master
weights and the update staying fp32: JAX's usual mixed precision."""
import os
from functools import partial

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import common  # noqa: E402


def main():
    args = common.arguments(__doc__)
    x, scale, y, layers, order = common.load(args)
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in layers]
    velocity = [(jnp.zeros_like(W), jnp.zeros_like(b)) for W, b in params]
    compute = jnp.bfloat16 if args.precision == "bf16" else jnp.float32

    def loss(params, inputs, labels):
        z = inputs
        for l, (W, b) in enumerate(params):
            a = jnp.matmul(z.astype(compute), W.T.astype(compute), preferred_element_type=jnp.float32) + b
            z = jax.nn.relu(a) if l < len(params) - 1 else a
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), labels[:, None], axis=1))

    @partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, velocity, indices):
        inputs = x[indices].astype(jnp.float32) * scale
        grads = jax.grad(loss)(params, inputs, y[indices])
        velocity = jax.tree_util.tree_map(lambda v, g: common.MOMENTUM * v + g, velocity, grads)
        params = jax.tree_util.tree_map(lambda p, v: p - common.LEARNING_RATE * v, params, velocity)
        return params, velocity

    state = [params, velocity]

    def step(indices):
        state[0], state[1] = train_step(state[0], state[1], jnp.asarray(indices))

    # XLA's CPU client runs its products on a pool of every core.
    common.measure("jax" if args.precision == "fp32" else "jax bf16", args, order, step, threads=os.cpu_count(), sync=lambda: jax.block_until_ready(state))


if __name__ == "__main__":
    main()
