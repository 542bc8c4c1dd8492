#!/usr/bin/env python3
"""Linear baselines on the same rows sparky trains on: scikit-learn's
LogisticRegression (one-hot) and Vowpal Wabbit (one pass; and one pass with
-q cc, every pair of categorical features crossed), with their eval log loss,
AUC and wall time. For docs/PERFORMANCE.md and issue 14.

Usage: linear_baselines.py TRAIN.tsv EVAL.tsv [--sklearn-c 0.05,0.1,...] [--vw-bits 24]
                           [--vw-quadratic-bits B] [--skip-quadratic] [--skip-sklearn]

VW examples have two namespaces, i (integer buckets) and c (categorical
values); the quadratic run adds `-q cc`. Its examples/s is the training pass
alone (VW's driver parsing its text format and learning), not the writing of
that text by this script.

Features, as sparky's: each categorical value (missing included) one-hot per
column; each integer one-hot by log bucket (missing, negative, 0, 1, then
4 + floor(ln(x)^2), capped at 63). Needs scikit-learn, numpy, scipy and
vowpalwabbit (pip). Labelled TSV in the Criteo Kaggle layout.
"""
import argparse, math, sys, time, os, tempfile

import numpy as np


def bucket(v):
    if v == "":
        return 0
    x = int(v)
    if x < 0:
        return 1
    if x < 2:
        return 2 + x
    return min(4 + int(math.floor(math.log(x) ** 2)), 63)


def read(path):
    labels, rows = [], []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            p += [""] * (40 - len(p))
            labels.append(int(p[0]))
            rows.append([f"i{j}={bucket(p[1 + j])}" for j in range(13)] + [f"c{c}={p[14 + c]}" for c in range(26)])
    return np.array(labels), rows


def metrics(y, p):
    from sklearn.metrics import log_loss, roc_auc_score
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return log_loss(y, p), roc_auc_score(y, p)


def run_sklearn(ytr, rtr, yev, rev, cs):
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression
    t = time.monotonic()
    index = {}
    def matrix(rows, grow):
        indptr, indices = [0], []
        for r in rows:
            for tok in r:
                k = index.get(tok)
                if k is None and grow:
                    k = index[tok] = len(index)
                if k is not None:
                    indices.append(k)
            indptr.append(len(indices))
        return csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), len(index)))
    xtr = matrix(rtr, True)
    xev = matrix(rev, False)
    xev = csr_matrix((xev.data, xev.indices, xev.indptr), shape=(xev.shape[0], len(index)))
    prep = time.monotonic() - t
    for c in cs:
        t = time.monotonic()
        m = LogisticRegression(C=c, solver="liblinear", max_iter=200).fit(xtr, ytr)
        secs = time.monotonic() - t
        ll, auc = metrics(yev, m.predict_proba(xev)[:, 1])
        print(f"sklearn LogisticRegression C={c}: eval log_loss {ll:.4f} auc {auc:.4f}; fit {secs:.1f} s "
              f"({len(ytr) / secs:,.0f} rows/s; one-hot encoding {prep:.1f} s), {xtr.shape[1]} columns")


def write_vw(path, y, rows):
    # Two namespaces: i (the 13 integer buckets) and c (the 26 categorical
    # values), so that -q cc crosses the categorical features only.
    clean = lambda tok: tok.replace(":", ";").replace("|", "/")
    with open(path, "w") as f:
        for label, r in zip(y, rows):
            f.write(("1" if label else "-1") + " |i " + " ".join(clean(t) for t in r[:13])
                    + " |c " + " ".join(clean(t) for t in r[13:]) + "\n")


def run_vw(d, yev, n_train, bits, extra, name):
    """One pass of VW over d/train.vw (its own driver parsing its text format,
    as its command line does), then scores d/eval.vw."""
    from vowpalwabbit import Workspace
    tr, ev, model, preds = (os.path.join(d, n) for n in ("train.vw", "eval.vw", "model.vw", "preds.txt"))
    t = time.monotonic()
    w = Workspace(arg_list=["-d", tr, "-b", str(bits), "--loss_function", "logistic", "-f", model, "--quiet"] + extra)
    w.run_parser()
    w.finish()
    secs = time.monotonic() - t
    w = Workspace(arg_list=["-t", "-d", ev, "-i", model, "--link", "logistic", "-p", preds, "--quiet"])
    w.run_parser()
    w.finish()
    p = np.loadtxt(preds, ndmin=1)
    ll, auc = metrics(yev, p)
    flags = " ".join(["-b", str(bits)] + extra)
    print(f"vowpal wabbit {name} ({flags}): eval log_loss {ll:.4f} auc {auc:.4f}; training pass {secs:.1f} s "
          f"({n_train / secs:,.0f} examples/s, from its text format)", flush=True)
    return ll, auc, secs


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("train"); a.add_argument("eval")
    a.add_argument("--sklearn-c", default="0.02,0.05,0.1,0.3")
    a.add_argument("--vw-bits", type=int, default=24)
    a.add_argument("--vw-quadratic-bits", type=int, default=None,
                   help="hash bits for the -q cc run (default: --vw-bits)")
    a.add_argument("--skip-quadratic", action="store_true", help="skip VW's -q cc run")
    a.add_argument("--skip-sklearn", action="store_true")
    args = a.parse_args()
    ytr, rtr = read(args.train)
    yev, rev = read(args.eval)
    rate = ytr.mean()
    print(f"{len(ytr)} train rows, {len(yev)} eval rows; constant-rate eval log loss "
          f"{metrics(yev, np.full(len(yev), rate))[0]:.4f}")
    with tempfile.TemporaryDirectory() as d:
        write_vw(os.path.join(d, "train.vw"), ytr, rtr)
        write_vw(os.path.join(d, "eval.vw"), yev, rev)
        run_vw(d, yev, len(ytr), args.vw_bits, [], "one pass")
        if not args.skip_quadratic:
            # Every pair of categorical features (namespace c with itself).
            run_vw(d, yev, len(ytr), args.vw_quadratic_bits or args.vw_bits, ["-q", "cc"], "one pass, quadratic")
    if not args.skip_sklearn:
        run_sklearn(ytr, rtr, yev, rev, [float(c) for c in args.sklearn_c.split(",")])


if __name__ == "__main__":
    sys.exit(main())
