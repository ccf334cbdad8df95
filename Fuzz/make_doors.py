#!/usr/bin/env python3
"""The malformed-input corpus of the other doors: CSV, NPY, IDX (plain and
gzip) and configuration files (JSON, YAML). Each file is refused cleanly by
the command that reads it (Tests/BackpropCLITests/CorpusTests.swift) and
seeds the fuzzer of its door (Fuzz/run.sh); a file's name starts with its
door (csv-, npy-, idx-, config-).

    make_doors.py OUT_DIR        # writes the files and OUT_DIR/manifest.json

The manifest gives, for each file, a fragment the error must contain.
The committed copy is Fuzz/doors/; rerun this after adding a case.
Needs NumPy (python3-numpy)."""
import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np


def npy(header, data=b"", version=(1, 0)):
    """A .npy file with `header` padded as NumPy pads it."""
    text = header.encode("utf-8") if isinstance(header, str) else header
    length_size = 2 if version[0] == 1 else 4
    text += b" " * (63 - (8 + length_size + len(text)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(text).to_bytes(length_size, "little") + text + data


def idx(dims, data=b"", element_type=0x08):
    return bytes([0, 0, element_type, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def cases():
    good_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }"
    floats = np.arange(12, dtype="<f4").tobytes()
    yield "csv-empty.csv", b"", "is empty"
    yield "csv-header-only.csv", b"a,b,label\n", "at least one row"
    yield "csv-one-row.csv", b"a,b,label\n1,2,0\n", "splitting needs at least 2"
    yield "csv-one-column.csv", b"1\n2\n", "at least one row of a feature and a target"
    yield "csv-wide-header.csv", b"a,b,c,d,label\n1,2,0\n3,4,1\n", "names 5 columns, the first row has 3"
    yield "csv-ragged.csv", b"1,2,0\n3,4,1\n5,6\n", "line 3"
    yield "csv-open-quote.csv", b'a,b,label\n1,"2,0\n3,4,1\n', "never closed"
    yield "csv-inner-quote.csv", b'a,b,label\n1,2"x,0\n', "quote inside an unquoted field"
    yield "csv-after-quote.csv", b'a,b,label\n1,"2"x,0\n', "text after a closing quote"
    yield "csv-not-utf8.csv", b"a,b,label\n1,\xff\xfe,0\n", "not UTF-8"
    yield "csv-binary.csv", bytes(range(256)) * 4, "not UTF-8"
    yield "csv-duplicate-names.csv", b"a,a,label\n1,2,0\n", "names the column 'a' twice"
    yield "csv-word.csv", b"1,2,0\n3,x,1\n", "'x' is not a number"
    yield "csv-newline-in-number.csv", b'a,b,label\n1,"2\n3",0\n4,5,1\n', "is not a number"
    yield "csv-nan.csv", b"1,nan,0\n3,4,1\n", "a finite number"
    yield "csv-overflow.csv", b"1,1e39,0\n3,4,1\n", "a finite number"
    yield "csv-label-fraction.csv", b"1,2,0.5\n3,4,1\n", "class number"
    yield "csv-label-negative.csv", b"1,2,-1\n3,4,1\n", "class number"
    yield "csv-label-256.csv", b"1,2,256\n3,4,1\n", "class number"
    yield "csv-crlf-ragged.csv", b"\xef\xbb\xbfa,b,label\r\n1,2,0\r\n3,4\r\n", "line 3"

    yield "npy-empty.npy", b"", "no \\x93NUMPY magic"
    yield "npy-no-magic.npy", b"NUMPY" + b"\0" * 100, "no \\x93NUMPY magic"
    yield "npy-version-9.npy", npy(good_header, floats)[:6] + b"\x09\x00" + npy(good_header, floats)[8:], "version 9.0"
    yield "npy-header-beyond-file.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr'", "declares 65535 bytes"
    yield "npy-missing-shape.npy", npy("{'descr': '<f4', 'fortran_order': False}", floats), "not exactly"
    yield "npy-extra-key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), 'x': 1}", floats), "not exactly"
    yield "npy-duplicate-key.npy", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)}", floats), "twice"
    yield "npy-structured.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4, 3)}", floats), "structured"
    yield "npy-complex.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (4, 3)}", floats * 2), "'<c8'"
    yield "npy-object.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (4, 3)}", floats * 2), "'|O'"
    yield "npy-unicode.npy", npy("{'descr': '<U3', 'fortran_order': False, 'shape': (4, 3)}", floats * 3), "'<U3'"
    yield "npy-float1.npy", npy("{'descr': '<f1', 'fortran_order': False, 'shape': (4, 3)}", floats), "element size"
    yield "npy-negative-shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 3)}", floats), "not a size"
    yield "npy-overflow-shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}"), "holds more than"
    yield "npy-short-data.npy", npy(good_header, floats[:-4]), "needs 48"
    yield "npy-long-data.npy", npy(good_header, floats + b"\0\0\0\0"), "needs 48"
    yield "npy-unclosed-string.npy", npy("{'descr': '<f4, 'fortran_order': False, 'shape': (4, 3)}", floats), "header"
    yield "npy-not-dict.npy", npy("('<f4', False, (4, 3))", floats), "not a dict literal"
    yield "npy-order-word.npy", npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4, 3)}", floats), "'Maybe'"
    yield "npy-v3-not-utf8.npy", npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), '\xff': 1}", floats, (3, 0)), "not UTF-8"

    yield "idx-empty", b"", "ends after 0 of 4 bytes"
    yield "idx-magic.idx", b"\x01\x00\x08\x03" + b"\0" * 16, "two zero bytes"
    yield "idx-float-type.idx", idx([2, 2, 2], b"\0" * 32, element_type=0x0D), "not unsigned byte"
    yield "idx-rank-0.idx", idx([]), "declares 0 dimensions"
    yield "idx-rank-9.idx", idx([1] * 9, b"\0"), "declares 9 dimensions"
    yield "idx-zero-dimension.idx", idx([0, 28, 28]), "of size 0"
    yield "idx-huge.idx", idx([65536, 65536, 28]), "more than 1073741824 bytes"
    yield "idx-truncated-dims.idx", idx([4, 2, 2])[:9], "dimensions"
    yield "idx-truncated-data.idx", idx([4, 2, 2], b"\0" * 10), "ends after 10 of 16 bytes"
    yield "idx-one-dimension.idx", idx([4], b"\0" * 4), "images need at least 2"
    bomb = gzip.compress(idx([60000, 28, 28], bytes(60000 * 28 * 28)), 9)
    yield "idx-gzip-bomb.gz", bomb, "more than 200 times"
    good = gzip.compress(idx([4, 2, 2], bytes(range(16))))
    yield "idx-gzip-truncated.gz", good[: len(good) // 2], "ends after"
    corrupt = bytearray(good)
    corrupt[12] ^= 0xFF
    yield "idx-gzip-corrupt.gz", bytes(corrupt), "IDX"

    yield "config-alias-bomb.yaml", b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
        + b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n", "alias"
    yield "config-duplicate.json", b'{"epochs": 1, "epochs": 2}', "'epochs' is given twice"
    yield "config-duplicate.yaml", b"epochs: 1\nepochs: 2\n", "'epochs' is given twice"
    yield "config-list.json", b"[1, 2]", "is not a JSON object"
    yield "config-nested.json", b'{"layers": {"a": 1}}', 'key "layers": expected a list of whole numbers (784,256,10), found a mapping'
    yield "config-deep.yaml", b"a: " + b"[" * 20 + b"]" * 20 + b"\n", "nests deeper"
    yield "config-many-values.yaml", b"layers: [" + b"1, " * 20000 + b"1]\n", "more values"
    yield "config-not-utf8.json", b'{"epochs": "\xff"}', "is not a JSON object"
    yield "config-uppercase.json", b'{"Epochs": 1}', "not a flag name"
    yield "config-config-key.json", b'{"config": "other.json"}', "not a flag name"
    yield "config-dashes.yaml", b"--epochs: 1\n", "not a flag name"
    yield "config-unknown-key.json", b'{"epoch": 1}', "epoch"
    yield "config-bad-number.yaml", b"epochs: many\n", "epochs"
    yield "config-truncated.json", b'{"epochs": 1, "learning-rate"', "is not a JSON object"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, data, expect in cases():
        (out / name).write_bytes(data)
        manifest.append({"file": name, "expect": expect})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} malformed inputs in {out}")


if __name__ == "__main__":
    main()
