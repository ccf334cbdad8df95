"""The table of a recipe's runs: for each run directory, the epoch of its best
validation accuracy (the weights early stopping restores into model.h5), that
accuracy, model.h5's test accuracy (`backprop evaluate --json`: the test
split read once per model, choosing nothing), its wall time and its
parameters' fingerprint; then, for each group of runs (teacher-*, distilled-*), the mean
validation accuracy (what a choice between groups goes by), the mean ± sd of
the test accuracies, and the compute. A run without a validation split (a
refit) shows its last epoch, whose weights model.h5 holds, and no validation.

    python3 Benchmarks/accuracy/recipe_table.py runs/teacher-11 … runs/distilled-3
"""
import csv
import json
import os
import re
import statistics
import subprocess
import sys

BACKPROP = os.environ.get("BACKPROP", ".build/release/backprop")


def run(directory):
    with open(f"{directory}/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    validated = [r for r in rows if r.get("validation_accuracy")]
    best = max(validated, key=lambda r: (float(r["validation_accuracy"]), -int(r["epoch"]))) if validated else rows[-1]
    data = json.load(open(f"{directory}/config.json"))["data"]
    evaluation = json.loads(subprocess.run([BACKPROP, "evaluate", "--checkpoint", f"{directory}/model.h5", "--data", data, "--json"],
                                           capture_output=True, text=True, check=True).stdout)
    test = evaluation.get("accuracy")
    return {
        "run": directory, "epoch": int(best["epoch"]), "validation": 100 * float(best["validation_accuracy"]) if validated else None,
        "test": 100 * test if test is not None else float("nan"), "wall": float(rows[-1]["wall_time"]),
        "parameters": evaluation["parameters"],
    }


def main():
    runs = [run(d.rstrip("/")) for d in sys.argv[1:]]
    print("| run | best validation epoch | validation accuracy | test accuracy | wall time | parameters |")
    print("|---|---:|---:|---:|---:|---|")
    for r in runs:
        validation = "—" if r["validation"] is None else f"{r['validation']:.2f} %"
        print(f"| {r['run']} | {r['epoch']} | {validation} | {r['test']:.2f} % | {r['wall']:.0f} s | `{r['parameters']}` |")
    groups = {}
    for r in runs:
        groups.setdefault(re.sub(r"-[0-9]+$", "", r["run"]), []).append(r)
    for name, members in groups.items():
        tests = [r["test"] for r in members]
        spread = f" ± {statistics.stdev(tests):.2f}" if len(tests) > 1 else ""
        validations = [r["validation"] for r in members if r["validation"] is not None]
        chooses = (f"validation {statistics.mean(validations):.2f} % (what chooses)" if len(validations) == len(members)
                   else "no validation split (a refit: nothing left to choose)")
        print(f"{name}: {chooses}, "
              f"test {statistics.mean(tests):.2f}{spread} % over {len(tests)}; {sum(r['wall'] for r in members):.0f} s of runs in all")


if __name__ == "__main__":
    main()
