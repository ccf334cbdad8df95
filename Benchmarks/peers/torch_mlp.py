"""The reference workload in PyTorch: nn.Linear layers with the starting
weights Backprop wrote, autograd, torch.optim.SGD(momentum=0.9),
PEER_THREADS intra-op threads (default 2); eager, or with --compile the
model through torch.compile (Inductor's C++ code for the CPU); with
--precision bf16 the forward pass under torch.autocast("cpu", bfloat16)
(oneDNN's bf16 products, fp32 master weights), as PyTorch's docs write it."""
import os

import numpy as np
import torch

import common


def main():
    args = common.arguments(__doc__)
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", "2")))
    x, scale, y, layers, order = common.load(args)
    x = torch.from_numpy(x)
    y = torch.from_numpy(y)
    modules = []
    for l, (W, b) in enumerate(layers):
        linear = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if l < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules)
    optimizer_parameters = model.parameters()
    if args.compile:
        model = torch.compile(model)
    optimizer = torch.optim.SGD(optimizer_parameters, lr=common.LEARNING_RATE, momentum=common.MOMENTUM)
    loss_function = torch.nn.CrossEntropyLoss()  # mean over the batch

    def step(indices):
        index = torch.from_numpy(np.ascontiguousarray(indices))
        inputs = x[index].to(torch.float32) * scale
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = loss_function(model(inputs), y[index])
        loss.backward()
        optimizer.step()

    common.measure(("pytorch-compile" if args.compile else "pytorch") + ("" if args.precision == "fp32" else " bf16"), args, order, step, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
