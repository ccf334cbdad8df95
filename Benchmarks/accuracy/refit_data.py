"""A refit of a dataset with a stored validation split: its /train rows
followed by its /validation rows as one /train, its /test as it is, no
/validation. Once every choice has been made on the validation split, the
recipe's last model trains on all of it (scikit-learn's refit); a teacher
whose members trained on the split can teach it, since `backprop train`
checks that the rows are the members' training rows and then their
validation rows (Dataset.isRefit). Written atomically.

    python Benchmarks/accuracy/refit_data.py datasets/fashion-mnist-split.h5 datasets/fashion-mnist-refit.h5
"""
import os
import sys

import h5py
import numpy as np


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: refit_data.py SPLIT.h5 OUTPUT.h5")
    source, output = sys.argv[1:]
    if os.path.abspath(source) == os.path.abspath(output):
        raise SystemExit(f"{output}: would overwrite its source")
    with h5py.File(source, "r") as f:
        for name in ["/train/x", "/train/y", "/validation/x", "/validation/y", "/test/x", "/test/y"]:
            if name not in f:
                raise SystemExit(f"{source}: no {name}; a refit needs a dataset with a stored validation split "
                                 "(`backprop import … --validation-fraction`)")
        train, validation = f["/train/x"], f["/validation/x"]
        if (train.dtype, train.shape[1:], train.attrs.get("scale")) != (validation.dtype, validation.shape[1:], validation.attrs.get("scale")):
            raise SystemExit(f"{source}: /train/x and /validation/x differ in type, row shape or scale; they cannot be one /train")
        temporary = output + ".partial"
        with h5py.File(temporary, "w") as o:
            for key, value in f.attrs.items():
                o.attrs[key] = value
            parts = {"train": ("train", "validation"), "test": ("test",)}
            for split, sources in parts.items():
                x = o.create_dataset(f"{split}/x", data=np.concatenate([f[f"/{s}/x"][()] for s in sources]))
                # The scale, not the stored fingerprints (Backprop fingerprints a file without them in one pass).
                if "scale" in f[f"/{sources[0]}/x"].attrs:
                    x.attrs["scale"] = f[f"/{sources[0]}/x"].attrs["scale"]
                o.create_dataset(f"{split}/y", data=np.concatenate([f[f"/{s}/y"][()] for s in sources]))
        os.replace(temporary, output)
    print(f"wrote {output}: /train of {source} then its /validation as /train, its /test")


if __name__ == "__main__":
    main()
