#!/usr/bin/env python3
"""BackpropCore's folders are layers: each uses only the folders before it in
LAYERS (a type defined in a later folder, named in code, is a reach up).
Errors/ is the one exception, and only in one direction: every layer throws
TrainingError, whose cases carry the values a user gave (a Loss, an
Activation) and name a setting, so Errors/ may name the types of any layer.
Run from the repository's root; exits 1 and lists each reach up."""
import collections, glob, os, re, sys

LAYERS = ["Errors", "Tensor", "Random", "Parallel", "Kernels", "Layers", "Optimizers", "Privacy",
          "Data", "Step", "Configuration", "Loop"]
ROOT = "Sources/BackpropCore"

def code(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"//[^\n]*", "", text)           # comments
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)  # string literals

folders = sorted(d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d)) and not d.endswith(".docc"))
unknown = [d for d in folders if d not in LAYERS]
if unknown:
    sys.exit(f"{ROOT}: folder(s) {', '.join(unknown)} are in no layer; add them to LAYERS in {sys.argv[0]}")
defined = {}
declaration = re.compile(r"^(?:(?:public|internal|fileprivate|private|final|@usableFromInline|indirect)\s+)*"
                         r"(?:struct|enum|class|protocol|actor|typealias)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
for path in glob.glob(f"{ROOT}/*/*.swift"):
    for name in declaration.findall(code(path)):
        defined.setdefault(name, path.split("/")[2])
reaches = collections.defaultdict(set)
for path in glob.glob(f"{ROOT}/*/*.swift"):
    folder = path.split("/")[2]
    if folder == "Errors":
        continue
    text = code(path)
    for name, home in defined.items():
        if LAYERS.index(home) > LAYERS.index(folder) and re.search(rf"\b{name}\b", text):
            reaches[f"{folder} -> {home}"].add(f"{name} ({os.path.basename(path)})")
for edge, uses in sorted(reaches.items()):
    print(f"{edge}: {', '.join(sorted(uses))}")
sys.exit(1 if reaches else 0)
