#!/usr/bin/env bash
# A/B of criteo-prepare (train mode), criteo-train (one epoch) and criteo-predict: the binaries in
# OLD_BIN_DIR and NEW_BIN_DIR, three alternating rounds, on DATA_DIR/{train,eval,test}.tsv (criteo-generate).
# Prints wall time and peak RSS per step.
set -euo pipefail
OLD=$1; NEW=$2; D=${3:?usage: ab_steps.sh OLD_BIN_DIR NEW_BIN_DIR DATA_DIR (with train.tsv, eval.tsv, test.tsv)}
run() { # unused bin-dir label
  local B=$2 L=$3
  rm -rf $D/$L; mkdir -p $D/$L
  /usr/bin/time -f "$L prepare %e s %M KB" $B/criteo-prepare -i $D/train.tsv -o $D/$L/train -m train -x $D/$L/model --no-sync -q 2>&1 >/dev/null | grep "prepare"
  $B/criteo-prepare -i $D/eval.tsv -o $D/$L/eval -m evaluate -x $D/$L/model --no-sync -q >/dev/null 2>&1
  $B/criteo-prepare -i $D/test.tsv -o $D/$L/test -m predict -x $D/$L/model --no-sync -q > /dev/null 2>&1
  /usr/bin/time -f "$L train %e s %M KB" $B/criteo-train --job-dir $D/$L/job --train-dir $D/$L/train --eval-dir $D/$L/eval --epochs 1 -q 2>&1 >/dev/null | grep "train"
  /usr/bin/time -f "$L predict %e s %M KB" $B/criteo-predict --model $D/$L/job --input $D/$L/train --output $D/$L/pred -q 2>&1 | grep predict
}
for i in 1 2 3; do run x $OLD old; run x $NEW new; done
