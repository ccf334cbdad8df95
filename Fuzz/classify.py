#!/usr/bin/env python3
"""Sorts fuzzer findings into those inside libhdf5 (known, listed in the
README's security section) and the rest. Each argument is the output of
replaying one finding through backprop-fuzz. A sanitizer report is inside
libhdf5 when the innermost stack frame that is not the sanitizer's, the
fuzzer's or libc's lies in libhdf5; a Swift runtime failure (overflow,
bounds, precondition) is always ours. Exits 1 when any finding is not
inside libhdf5.

    classify.py REPLAY.log…"""
import re
import sys

NOISE = ("compiler-rt", "sanitizer", "libc.so", "sysdeps/", "fuzzer::", "libFuzzer", "libclang_rt")


def findings(log):
    block = None
    for line in log:
        if re.search(r"ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|deadly signal", line):
            block = [line]
        elif block is not None:
            block.append(line)
            if line.startswith("SUMMARY:"):
                yield block
                block = None


def inside_libhdf5(block):
    for line in block:
        if re.match(r"\s+#\d+ 0x", line) and not any(noise in line for noise in NOISE):
            return "libhdf5" in line
    return False


def classify(text):
    """'libhdf5', 'ours' or None (no finding) for one replay's output."""
    if "Swift runtime failure" in text or ("Fatal error:" in text and "failed to allocate" not in text):
        return "ours"
    # A failed allocation after libhdf5 ran away with memory (ASan's soft RSS
    # limit makes every malloc fail until it is released) is libhdf5's.
    if "failed to allocate" in text or "swift_abortAllocationFailure" in text:
        return "libhdf5"
    blocks = list(findings(text.splitlines()))
    if not blocks:
        return None
    return "libhdf5" if all(inside_libhdf5(b) for b in blocks) else "ours"


def main():
    known, new = 0, []
    for path in sys.argv[1:]:
        verdict = classify(open(path, errors="replace").read())
        if verdict == "libhdf5":
            known += 1
        elif verdict == "ours":
            new.append(path)
    print(f"findings: {known + len(new)} ({known} inside libhdf5)")
    for path in new:
        print(f"new finding outside libhdf5: {path}")
    sys.exit(1 if new else 0)


if __name__ == "__main__":
    main()
