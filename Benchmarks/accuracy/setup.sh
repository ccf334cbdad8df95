# What every accuracy script starts from, sourced from the repository's root:
# the release build ($backprop), the Fashion-MNIST dataset with a stored
# validation split ($data), runs/, refit_data, which writes its refit ($data_refit:
# its /train, then its /validation, as one /train: `backprop rechunk --refit`)
# when it is missing, and
# peers_venv, which makes the peers' Python (PyTorch) when it is missing and
# sets $venv.
backprop=.build/release/backprop
[ -x "$backprop" ] || swift build -c release
data=datasets/fashion-mnist-split.h5
[ -f "$data" ] || "$backprop" import fashion-mnist --output "$data" --validation-fraction 0.1
mkdir -p runs
data_refit=datasets/fashion-mnist-refit.h5
refit_data() { [ -f "$data_refit" ] || "$backprop" rechunk --refit "$data" --output "$data_refit"; }
venv=Benchmarks/peers/.venv
peers_venv() {
    [ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet numpy h5py torch jax threadpoolctl; }
}
