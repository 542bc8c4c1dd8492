#!/usr/bin/env python3
"""Checks, with TensorFlow itself, that the SavedModel inside a sparky export
scores the Examples criteo-prepare wrote exactly as criteo-predict did.

Usage:
    check_export_savedmodel.py EXPORT_OR_JOB_DIR PREPARED_DIR PREDICTIONS_DIR [--tolerance 1e-6]

- EXPORT_OR_JOB_DIR: an export folder (job/export/Servo/<seconds>) or a job
  folder (its newest export is taken);
- PREPARED_DIR: the part-* TFRecords criteo-prepare wrote (any mode);
- PREDICTIONS_DIR: criteo-predict's output for those same parts
  (prediction.results-* JSON lines, in part and row order).

Loads the SavedModel with tf.saved_model.load, feeds every serialized Example
to its serving_default signature, and checks classes == ["0", "1"] on every
row and max |scores - criteo-predict's scores| <= tolerance. Exits 0 when the
check holds, 1 otherwise. The Rust test suite does not need this script (nor
Python); run it where TensorFlow is installed.
"""
import argparse, glob, json, os, sys

import numpy as np


def newest_export(path):
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    servo = os.path.join(path, "export", "Servo")
    runs = sorted((int(n), n) for n in os.listdir(servo) if n.isdigit())
    return os.path.join(servo, runs[-1][1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export")
    p.add_argument("prepared")
    p.add_argument("predictions")
    p.add_argument("--tolerance", type=float, default=1e-6)
    p.add_argument("--batch", type=int, default=8192)
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    export = newest_export(a.export)
    fn = tf.saved_model.load(export, tags=["serve"]).signatures["serving_default"]
    parts = sorted(f for f in glob.glob(os.path.join(a.prepared, "part-*")) if not f.endswith(".tmp"))
    kind = lambda f: "GZIP" if f.endswith(".gz") else "ZLIB" if f.endswith(".zlib") else ""
    ours = []
    for f in sorted(glob.glob(os.path.join(a.predictions, "prediction.results-*"))):
        with open(f) as fh:
            ours.extend(json.loads(line)["scores"] for line in fh)
    ours = np.array(ours, dtype=np.float64)
    theirs, classes_ok = [], True
    for f in parts:
        for batch in tf.data.TFRecordDataset(f, compression_type=kind(f)).batch(a.batch):
            out = fn(inputs=batch)
            classes_ok &= bool(np.all(out["classes"].numpy() == np.array([b"0", b"1"])))
            theirs.append(out["scores"].numpy())
    theirs = np.concatenate(theirs).astype(np.float64) if theirs else np.zeros((0, 2))
    print(f"tensorflow {tf.__version__}; export {export}")
    print(f"rows: TensorFlow scored {len(theirs)}, criteo-predict wrote {len(ours)}")
    if len(theirs) != len(ours):
        print("FAIL: row counts differ"); return 1
    diff = float(np.max(np.abs(theirs - ours))) if len(ours) else 0.0
    identical = int(np.sum(np.all(theirs.astype(np.float32) == ours.astype(np.float32), axis=1)))
    print(f"max |score difference| = {diff:.3g} (tolerance {a.tolerance:g}); rows identical in float32: {identical}/{len(ours)}")
    print(f"classes == ['0', '1'] on every row: {classes_ok}")
    ok = classes_ok and diff <= a.tolerance
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
