"""Time to accuracy from epoch logs: for each threshold, the wall time at
which the model chosen on validation so far first reaches it on the test split.

    python3 Benchmarks/accuracy/time_to_accuracy.py RUN/metrics.csv [...] [--thresholds 0.89,0.90,0.91]

Each file is a `backprop train --report-test every-epoch` metrics.csv (or
torch_recipe.py's, which has the same columns). At epoch e the chosen model
is the epoch e* ≤ e of the best validation accuracy (the first of ties, as
best.h5 keeps it); the threshold is reached at the first e whose chosen
model's test accuracy is at least it, and the time is wall_time at e (the
seconds the run had spent by then, evaluations included). A refit (no
validation split: nothing is left to choose on) is judged by each epoch's own
weights, and its last epoch is the model it gives. The test column only
measures: it chooses nothing. Prints one Markdown row per file.
"""
import argparse
import csv


def reached(path, thresholds):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("test_accuracy")]
    refit = not any(r.get("validation_accuracy") for r in rows)
    if not refit:
        rows = [r for r in rows if r.get("validation_accuracy")]
    if not rows:
        raise SystemExit(f"{path}: no epoch with a test_accuracy (train with --report-test every-epoch)")
    best = None
    times = {t: None for t in thresholds}
    for row in rows:
        if refit or best is None or float(row["validation_accuracy"]) > float(best["validation_accuracy"]):
            best = row
        for t in thresholds:
            if times[t] is None and float(best["test_accuracy"]) >= t:
                times[t] = (float(row["wall_time"]), int(row["epoch"]))
    return times, best, rows[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--thresholds", default="0.89,0.90,0.91")
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    header = ["run"] + [f"{100 * t:g} % test" for t in thresholds] + ["chosen epoch: validation, test", "run's wall time"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in args.files:
        times, best, last = reached(path, thresholds)
        cells = [path]
        for t in thresholds:
            cells.append("—" if times[t] is None else f"{times[t][0]:.0f} s (epoch {times[t][1]})")
        validation = f"{100 * float(best['validation_accuracy']):.2f} %" if best.get("validation_accuracy") else "— (a refit, its last epoch)"
        cells.append(f"{best['epoch']}: {validation}, {100 * float(best['test_accuracy']):.2f} %")
        cells.append(f"{float(last['wall_time']):.0f} s")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
