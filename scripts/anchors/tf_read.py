#!/usr/bin/env python3
"""TensorFlow's own reading speed on criteo-prepare's output, for comparison:
TFRecordDataset + batched parse_example of the 40 int64 features, over all
part-* files of a folder. Usage: tf_read.py PREPARED_DIR [BATCH]"""
import glob, os, sys, time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

folder = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
names = ["clicked"] + [f"integer-feature-{i}" for i in range(1, 14)] + [f"categorical-feature-{i}" for i in range(1, 27)]
spec = {n: tf.io.FixedLenFeature([1], tf.int64) for n in names}
files = sorted(glob.glob(os.path.join(folder, "part-*")))
ds = tf.data.TFRecordDataset(files, num_parallel_reads=2).batch(batch).map(
    lambda b: tf.io.parse_example(b, spec), num_parallel_calls=2).prefetch(4)
t = time.monotonic()
n = 0
for b in ds:
    n += int(b["clicked"].shape[0])
secs = time.monotonic() - t
print(f"tensorflow {tf.__version__}: read and parsed {n} Examples in {secs:.2f} s ({n / secs:,.0f} records/s, batch {batch})")
