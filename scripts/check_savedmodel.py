#!/usr/bin/env python3
"""Checks a SavedModel written by sparky against TensorFlow.

Takes a fixture folder written by

    cargo run -p sparky-savedmodel --example write_fixture -- FIXTURE

(FIXTURE/saved_model/, FIXTURE/examples.tfrecord, FIXTURE/expected.tsv),
loads the SavedModel with tf.saved_model.load, feeds the serialized Examples
to its serving_default signature in batches, and checks that

- the signature takes one string input, `inputs`, and returns `classes`
  (string [N, 2]) and `scores` (float [N, 2]);
- every row of `classes` is ["0", "1"];
- max |scores - expected| <= the tolerance (1e-6 by default).

It also loads the graph a second way, in a TF1 Session (the path TensorFlow
Serving's C++ loader mirrors), fetches the logits and reports how many equal
sparky's bit for bit; with --exact-logits that must be all of them (true for
models of sparky's export shape: buckets and one-hot only).

Prints what it found and exits 0 on success, 1 on a mismatch. Needs
TensorFlow 2 (any recent version; written against 2.21).
"""

import argparse
import os
import sys
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixture", help="folder written by the write_fixture example")
    parser.add_argument("--batch", type=int, default=4096, help="Examples per call")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument(
        "--exact-logits",
        action="store_true",
        help="fail unless every logit equals sparky's bit for bit",
    )
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    model_dir = os.path.join(args.fixture, "saved_model")
    records = os.path.join(args.fixture, "examples.tfrecord")
    expected = np.loadtxt(
        os.path.join(args.fixture, "expected.tsv"), dtype=np.float32, ndmin=2
    )
    print(f"tensorflow {tf.__version__}")

    start = time.monotonic()
    loaded = tf.saved_model.load(model_dir, tags=["serve"])
    print(f"loaded {model_dir} in {time.monotonic() - start:.2f} s")
    fn = loaded.signatures["serving_default"]
    _, kwargs = fn.structured_input_signature
    outputs = fn.structured_outputs
    print(f"serving_default inputs: {kwargs}")
    print(f"serving_default outputs: {outputs}")
    failures = []
    if set(kwargs) != {"inputs"} or kwargs["inputs"].dtype != tf.string:
        failures.append(f"expected one string input 'inputs', got {kwargs}")
    if set(outputs) != {"classes", "scores"}:
        failures.append(f"expected outputs classes and scores, got {sorted(outputs)}")

    start = time.monotonic()
    scores, classes, batches = [], [], []
    for batch in tf.data.TFRecordDataset(records).batch(args.batch):
        out = fn(inputs=batch)
        scores.append(out["scores"].numpy())
        classes.append(out["classes"].numpy())
        batches.append(batch.numpy())
    print(f"scored in {time.monotonic() - start:.2f} s")
    scores = np.concatenate(scores) if scores else np.zeros((0, 2), np.float32)
    classes = np.concatenate(classes) if classes else np.zeros((0, 2), object)

    # Columns: 1 - p, p, then the logit.
    expected_logits = expected[:, 2]
    expected = expected[:, :2]
    if scores.shape != expected.shape:
        failures.append(f"scores shape {scores.shape}, expected {expected.shape}")
    else:
        diff = np.abs(scores.astype(np.float64) - expected.astype(np.float64))
        worst = int(np.argmax(diff.max(axis=1))) if len(diff) else 0
        max_diff = float(diff.max()) if diff.size else 0.0
        exact = int(np.sum(scores[:, 1] == expected[:, 1]))
        print(f"examples: {len(scores)}")
        print(f"max |score diff|: {max_diff:.3g} (row {worst}: tensorflow {scores[worst]}, sparky {expected[worst]})"
              if len(scores) else "max |score diff|: no examples")
        print(f"p bit-identical: {exact} of {len(scores)}")
        if not max_diff <= args.tolerance:
            failures.append(f"max |score diff| {max_diff:.3g} > {args.tolerance:g}")
    if classes.shape != (len(scores), 2) or not (
        np.all(classes[:, 0] == b"0") and np.all(classes[:, 1] == b"1")
    ):
        failures.append(f"classes are not all [b'0', b'1']: {classes[:3]}")
    else:
        print("classes: every row [b'0', b'1']")

    # The same graph in a TF1 Session, fetching an inner tensor: the logit.
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.saved_model.load(sess, ["serve"], model_dir)
        logits = [
            sess.run("linear/logit:0", {"input_example_tensor:0": b})
            for b in batches
        ]
    logits = np.concatenate(logits) if logits else np.zeros(0, np.float32)
    if logits.shape == expected_logits.shape:
        same = int(np.sum(logits == expected_logits))
        diff = float(np.abs(logits - expected_logits).max()) if len(logits) else 0.0
        print(f"session logits bit-identical: {same} of {len(logits)} (max diff {diff:.3g})")
        if args.exact_logits and same != len(logits):
            failures.append(f"{len(logits) - same} logits differ from sparky's")
    else:
        failures.append(f"logits shape {logits.shape}, expected {expected_logits.shape}")

    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if not failures:
        print("OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
