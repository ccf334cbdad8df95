#!/usr/bin/env python3
"""Reads a run directory's TensorBoard event files with TensorBoard's own
reader and prints, per tag, the steps it holds (JSON), after checking that no
tag has a step twice and that every file starts with brain.Event:2. Run by
TensorBoardTests with the Python of .venv (tensorboard from PyPI).

    check_tensorboard.py RUN_DIR/tensorboard"""
import glob
import json
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    directory = sys.argv[1]
    files = sorted(glob.glob(f"{directory}/events.out.tfevents.*"))
    assert files, f"no event files in {directory}"
    for path in files:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            f.read(4)
            assert b"brain.Event:2" in f.read(length), f"{path} does not start with brain.Event:2"
    accumulator = EventAccumulator(directory, size_guidance={"scalars": 0})
    accumulator.Reload()
    steps = {}
    for tag in accumulator.Tags()["scalars"]:
        events = accumulator.Scalars(tag)
        tag_steps = [e.step for e in events]
        assert len(tag_steps) == len(set(tag_steps)), f"{tag} has a step twice: {tag_steps}"
        steps[tag] = {"steps": tag_steps, "values": [e.value for e in events]}
    print(json.dumps({"files": len(files), "tags": steps}))


if __name__ == "__main__":
    main()
