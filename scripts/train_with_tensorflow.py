#!/usr/bin/env python3
"""Trains a TensorFlow model on the TFRecords criteo-prepare wrote: for users
who keep TensorFlow in the loop. The README shows the same code.

Usage: python3 scripts/train_with_tensorflow.py PREPARED_TRAIN_DIR MODEL_DIR [PREPARED_EVAL_DIR]
(MODEL_DIR is criteo-prepare's --model folder: its manifest.json gives the vocabulary sizes.)
"""
import glob, json, sys

import tensorflow as tf
import keras

train_dir, model_dir = sys.argv[1], sys.argv[2]
eval_dir = sys.argv[3] if len(sys.argv) > 3 else None

names = ["clicked"] + [f"integer-feature-{i}" for i in range(1, 14)] \
      + [f"categorical-feature-{i}" for i in range(1, 27)]
spec = {n: tf.io.FixedLenFeature([1], tf.int64) for n in names}

def dataset(folder):
    files = sorted(glob.glob(f"{folder}/part-*"))
    kind = "GZIP" if files[0].endswith(".gz") else ""
    def parse(batch):
        f = tf.io.parse_example(batch, spec)
        return f, f.pop("clicked")
    return tf.data.TFRecordDataset(files, compression_type=kind).batch(1024).map(parse).prefetch(2)

sizes = json.load(open(f"{model_dir}/manifest.json"))["vocabulary_sizes"]
inputs = {n: keras.Input(shape=(1,), dtype="int64", name=n) for n in names[1:]}
# A linear model: one weight per vocabulary id (width-1 embeddings), plus ln(1+x) of the integers.
terms = [keras.layers.Flatten()(keras.layers.Embedding(sizes[n] + 1, 1)(inputs[n])) for n in names[14:]]
ints = keras.layers.Concatenate()([inputs[n] for n in names[1:14]])
ints = keras.layers.Lambda(lambda x: keras.ops.log1p(keras.ops.relu(keras.ops.cast(x, "float32"))))(ints)
terms.append(keras.layers.Dense(1)(ints))
model = keras.Model(inputs, keras.layers.Activation("sigmoid")(keras.layers.Add()(terms)))
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
model.fit(dataset(train_dir), epochs=1, validation_data=dataset(eval_dir) if eval_dir else None, verbose=2)
