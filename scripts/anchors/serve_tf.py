#!/usr/bin/env python3
"""The anchor for criteo-serve: the export's SavedModel called in process.

Loads EXPORT/saved_model.pb with TensorFlow (as TF Serving would load it) and
calls its serving_default signature on prepared Examples: one row per call,
then 512 rows per call, for SECONDS each. Prints calls/s, rows/s and the
median and 99th percentile call time. This is the best TF Serving could do
on this machine without any network or JSON: a lower bound on its latency.

Usage: scripts/anchors/serve_tf.py EXPORT_DIR PREPARED_DIR [SECONDS]
"""

import glob
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def run(fn, batches, seconds):
    times = []
    rows = 0
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        b = batches[i % len(batches)]
        t = time.perf_counter()
        fn(inputs=b)
        times.append(time.perf_counter() - t)
        rows += int(b.shape[0])
        i += 1
    total = sum(times)
    return len(times) / total, rows / total, np.median(times) * 1e3, np.percentile(times, 99) * 1e3


def main():
    export, prepared = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    parts = sorted(glob.glob(os.path.join(prepared, "part-*")))
    records = [r.numpy() for r in tf.data.TFRecordDataset(parts).take(512 * 8)]
    fn = tf.saved_model.load(export, tags=["serve"]).signatures["serving_default"]
    singles = [tf.constant([r]) for r in records[:512]]
    batches = [tf.constant(records[i : i + 512]) for i in range(0, len(records) - 511, 512)]
    for b in singles[:20] + batches[:2]:
        fn(inputs=b)  # warm up
    for name, data in (("1 row per call", singles), ("512 rows per call", batches)):
        calls, rows, p50, p99 = run(fn, data, seconds)
        print(f"{name}: {calls:,.0f} calls/s, {rows:,.0f} rows/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
