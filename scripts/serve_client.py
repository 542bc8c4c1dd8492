#!/usr/bin/env python3
"""Calls a running criteo-serve with TensorFlow Serving's official Python client.

Shows that TF Serving's clients work unchanged, and checks that the answers
equal criteo-predict's batch output for the same rows, to the bit.

Usage:
  scripts/serve_client.py --grpc 127.0.0.1:8500 --rest http://127.0.0.1:8501 \
      --model sparky --prepared PREPARED_DIR --batch BATCH_OUTPUT_DIR [--rows 1000]

PREPARED_DIR is a criteo-prepare --mode predict output (its Examples carry an
"id"), BATCH_OUTPUT_DIR the criteo-predict output for it. Needs tensorflow-cpu
and tensorflow-serving-api (scripts/setup-anchors.sh installs both).
Exits 1 when a score differs.
"""

import argparse
import base64
import glob
import json
import os
import sys
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)


def batch_scores(folder):
    """{id: p1} from criteo-predict's JSON lines."""
    out = {}
    for part in sorted(glob.glob(os.path.join(folder, "prediction.results-*"))):
        with open(part) as f:
            for line in f:
                d = json.loads(line)
                out[d["id"]] = d["scores"][1]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grpc", required=True)
    ap.add_argument("--rest", required=True)
    ap.add_argument("--model", default="sparky")
    ap.add_argument("--prepared", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--rows", type=int, default=1000)
    a = ap.parse_args()

    parts = sorted(glob.glob(os.path.join(a.prepared, "part-*")))
    records = [r.numpy() for r in tf.data.TFRecordDataset(parts).take(a.rows)]
    examples = [tf.train.Example.FromString(r) for r in records]
    ids = [e.features.feature["id"].int64_list.value[0] for e in examples]
    want = batch_scores(a.batch)
    expected = [tf.constant(want[i], dtype=tf.float32).numpy() for i in ids]

    channel = grpc.insecure_channel(a.grpc)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    service = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    failures = 0

    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = a.model
    status = models.GetModelStatus(req, timeout=10)
    print("GetModelStatus:", [(s.version, s.state) for s in status.model_version_status])

    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = a.model
    req.metadata_field.append("signature_def")
    meta = service.GetModelMetadata(req, timeout=10)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(sigs)
    sig = sigs.signature_def["serving_default"]
    print("GetModelMetadata: serving_default", sig.method_name, dict(sig.inputs).keys(), sorted(sig.outputs))

    req = predict_pb2.PredictRequest()
    req.model_spec.name = a.model
    req.model_spec.signature_name = "serving_default"
    req.inputs["inputs"].CopyFrom(tf.make_tensor_proto(records, dtype=tf.string))
    resp = service.Predict(req, timeout=30)
    scores = tf.make_ndarray(resp.outputs["scores"])
    classes = tf.make_ndarray(resp.outputs["classes"])
    bad = sum(1 for s, e in zip(scores[:, 1], expected) if s != e)
    print(f"Predict: {len(records)} rows, shape {scores.shape}, classes {classes[0].tolist()}, "
          f"{bad} scores differ from criteo-predict")
    failures += bad

    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = a.model
    req.input.example_list.examples.extend(examples)
    resp = service.Classify(req, timeout=30)
    got = [c.classes[1].score for c in resp.result.classifications]
    bad = sum(1 for s, e in zip(got, expected) if tf.constant(s, dtype=tf.float32).numpy() != e)
    print(f"Classify: {len(got)} rows, {bad} scores differ from criteo-predict")
    failures += bad

    body = json.dumps({"instances": [{"b64": base64.b64encode(r).decode()} for r in records]}).encode()
    url = f"{a.rest}/v1/models/{a.model}:predict"
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as r:
        preds = json.load(r)["predictions"]
    bad = sum(1 for p, i in zip(preds, ids) if p["scores"][1] != want[i] or p.get("id") != i)
    print(f"REST predict: {len(preds)} rows, {bad} differ from criteo-predict's lines")
    failures += bad

    print("OK" if failures == 0 else f"FAILED: {failures} differences")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
