#!/usr/bin/env python3
"""Reads a run directory's TensorBoard event files with TensorBoard's own
reader and prints, per tag, the steps and values it holds (JSON), after
checking every record's two masked CRC-32Cs, that every file starts with
brain.Event:2, and that no tag has a step twice. Run by
TensorBoardTests with the Python of .venv (tensorboard from PyPI).

    check_tensorboard.py RUN_DIR/tensorboard"""
import glob
import json
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = 0x82F63B78 ^ (c >> 1) if c & 1 else c >> 1
    TABLE.append(c)


def masked_crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def check_records(path):
    """Every record of the file: its length's and its data's masked CRC; returns the records."""
    records = []
    with open(path, "rb") as f:
        while header := f.read(12):
            assert len(header) == 12, f"{path}: a record's header is cut short"
            (crc,) = struct.unpack("<I", header[8:])
            assert crc == masked_crc32c(header[:8]), f"{path}: record {len(records)}: the length's CRC is wrong"
            (length,) = struct.unpack("<Q", header[:8])
            data, (crc,) = f.read(length), struct.unpack("<I", f.read(4))
            assert crc == masked_crc32c(data), f"{path}: record {len(records)}: the data's CRC is wrong"
            records.append(data)
    return records


def main():
    directory = sys.argv[1]
    files = sorted(glob.glob(f"{directory}/events.out.tfevents.*"))
    assert files, f"no event files in {directory}"
    for path in files:
        records = check_records(path)
        assert records and b"brain.Event:2" in records[0], f"{path} does not start with brain.Event:2"
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
