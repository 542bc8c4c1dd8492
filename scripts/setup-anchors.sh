#!/usr/bin/env bash
# Creates (or completes) the Python environment that the comparison anchors and
# the TensorFlow check scripts use, with the versions they were measured with.
#
# Usage: scripts/setup-anchors.sh VENV_DIR [PYTHON]
#   VENV_DIR  where the virtual environment goes (created if missing)
#   PYTHON    interpreter to build it from (default: python3; measured with 3.11)
#
# Two marker files tell other scripts how far it got:
#   VENV_DIR/.ready-tf  TensorFlow, TensorBoard and tensorflow-serving-api are in
#   VENV_DIR/.ready     everything is in
#
# tensorflow-serving-api declares a dependency on the `tensorflow` package; we
# use `tensorflow-cpu` (same import name, no GPU libraries), so the serving API
# goes in with --no-deps and its other needs (grpcio, protobuf) come with
# TensorFlow. `pip check` therefore reports "requires tensorflow, which is not
# installed": expected and harmless. pyspark needs a Java runtime (17 or newer)
# on PATH to run; it is not installed here.
set -euo pipefail

venv=${1:?usage: setup-anchors.sh VENV_DIR [PYTHON]}
python=${2:-python3}

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
"${pip[@]}" --upgrade pip

"${pip[@]}" tensorflow-cpu==2.21.0 tensorboard==2.21.0
"${pip[@]}" --no-deps tensorflow-serving-api==2.21.0
"$venv/bin/python" - <<'EOF'
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: F401
assert tf.__version__ == "2.21.0", tf.__version__
EOF
touch "$venv/.ready-tf"

"${pip[@]}" \
    polars==2.1.0 \
    duckdb==2.0.1 \
    pyarrow==26.0.1 \
    vowpalwabbit==9.11.9 \
    scikit-learn==1.9.1 \
    scipy==1.17.1 \
    pyspark==4.3.0
"$venv/bin/python" -c "import polars, duckdb, pyarrow, sklearn, vowpalwabbit, pyspark"
touch "$venv/.ready"
echo "ready: $venv"
