#!/usr/bin/env python3
"""Reference (ε, best order) values for Backprop's RDP accountant, from
Opacus's own RDP analysis (opacus/accountants/analysis/rdp.py), on a grid
of noise multipliers σ, sampling rates q, steps T and δ, at Opacus's
default orders. Writes privacy_references.json beside this script.

Versions used for the committed file: Python 3.11, opacus 1.5.2 (its
analysis module alone: loaded from its file, so PyTorch is not needed),
scipy 1.17.1, numpy 2.4.6:

    python3 -m venv /tmp/dp && /tmp/dp/bin/pip install numpy scipy && /tmp/dp/bin/pip install --no-deps opacus==1.5.2
    /tmp/dp/bin/python make_privacy_references.py
"""
import importlib.util
import json
import pathlib
import warnings

# find_spec locates the package without importing it (its __init__ imports PyTorch).
spec = importlib.util.find_spec("opacus")
analysis = pathlib.Path(spec.submodule_search_locations[0]) / "accountants" / "analysis" / "rdp.py"
module_spec = importlib.util.spec_from_file_location("opacus_rdp", analysis)
rdp = importlib.util.module_from_spec(module_spec)
module_spec.loader.exec_module(rdp)

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
cases = []
for sigma in (0.4, 0.8, 1.1, 2.0, 5.0):
    for q in (0.001, 0.0043, 0.01, 0.25, 1.0):
        for steps in (1, 100, 10_000):
            for delta in (1e-5, 1e-3):
                values = rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=ORDERS)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    epsilon, order = rdp.get_privacy_spent(orders=ORDERS, rdp=values, delta=delta)
                cases.append({"sigma": sigma, "q": q, "steps": steps, "delta": delta,
                              "epsilon": float(epsilon), "order": float(order)})
out = pathlib.Path(__file__).with_name("privacy_references.json")
out.write_text(json.dumps(cases, indent=1) + "\n")
print(f"{len(cases)} cases in {out}")
