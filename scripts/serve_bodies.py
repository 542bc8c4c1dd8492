#!/usr/bin/env python3
"""Writes request bodies for loading criteo-serve (scripts/serve_load.sh).

For each instance kind -- b64 (serialized prepared Examples), object (raw
fields by the Example schema's names) and tsv (raw lines) -- one body of 1 row
and one of 512 rows: OUT/{kind}_{n}.json. Standard library only.

Usage: scripts/serve_bodies.py PREPARED_DIR TSV_FILE OUT_DIR
"""

import base64
import glob
import json
import os
import struct
import sys

INT = [f"integer-feature-{i}" for i in range(1, 14)]
CAT = [f"categorical-feature-{i}" for i in range(1, 27)]


def records(folder, n):
    """The first n records of a folder's uncompressed TFRecord parts."""
    out = []
    for part in sorted(glob.glob(os.path.join(folder, "part-*"))):
        with open(part, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data) and len(out) < n:
            (length,) = struct.unpack_from("<Q", data, pos)
            out.append(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
    return out


def obj(line):
    fields = line.rstrip("\n").split("\t")
    if len(fields) == 40:
        fields = fields[1:]
    o = {}
    for name, v in zip(INT, fields[:13]):
        if v:
            o[name] = int(v)
    for name, v in zip(CAT, fields[13:]):
        if v:
            o[name] = v
    return o


def main():
    prepared, tsv, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    recs = records(prepared, 512)
    with open(tsv) as f:
        lines = [next(f).rstrip("\n") for _ in range(512)]
    kinds = {
        "b64": [{"b64": base64.b64encode(r).decode()} for r in recs],
        "object": [obj(l) for l in lines],
        "tsv": lines,
    }
    for kind, inst in kinds.items():
        for n in (1, 512):
            with open(os.path.join(out, f"{kind}_{n}.json"), "w") as f:
                json.dump({"instances": inst[:n]}, f)


if __name__ == "__main__":
    main()
