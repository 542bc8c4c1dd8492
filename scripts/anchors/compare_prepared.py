#!/usr/bin/env python3
"""Check that two prepared outputs hold the same rows and the same vocabulary.

Usage: compare_prepared.py A B [--vocab-a CSV] [--vocab-b CSV]

A and B are folders of Parquet parts (every *.parquet in the folder, in name
order, read as one table: sparky's part-r-NNNNN.parquet or the anchors'
part-00000.parquet) or single Parquet files. The vocabularies
(feature,value,count,rank CSVs) default to categorical-value-counts.csv in
each folder; give --vocab-a/--vocab-b for another place (sparky keeps it in
its --model folder). Compares column names and types, every value row by row,
and every vocabulary row (the missing value is the empty text in both).
Exit status 0 when equal, 1 with the first differences printed otherwise.
"""
import argparse
import glob
import os
import sys

import polars as pl


def table(path):
    files = sorted(glob.glob(os.path.join(path, "*.parquet"))) if os.path.isdir(path) else [path]
    if not files:
        sys.exit(f"no Parquet files in {path}")
    return pl.concat([pl.read_parquet(f) for f in files]), len(files)


def vocab(path):
    # Everything as text: the missing value must stay the empty text, not null.
    v = pl.read_csv(path, infer_schema=False, empty_string_is_null=False)
    return v.with_columns(pl.col("count").cast(pl.Int64), pl.col("rank").cast(pl.Int64))


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("a"); a.add_argument("b")
    a.add_argument("--vocab-a"); a.add_argument("--vocab-b")
    args = a.parse_args()
    ok = True

    ta, na = table(args.a)
    tb, nb = table(args.b)
    if ta.schema != tb.schema:
        print(f"schemas differ:\n  {ta.schema}\n  {tb.schema}")
        ok = False
    elif ta.height != tb.height:
        print(f"row counts differ: {ta.height} vs {tb.height}")
        ok = False
    else:
        for name in ta.columns:
            diff = (ta[name] != tb[name]) | (ta[name].is_null() != tb[name].is_null())
            n = int(diff.fill_null(True).sum())
            if n:
                first = int(diff.fill_null(True).arg_max())
                print(f"column {name}: {n} rows differ; first at row {first}: {ta[name][first]} vs {tb[name][first]}")
                ok = False
    print(f"rows: {ta.height} ({na} file(s)) vs {tb.height} ({nb} file(s)), {ta.width} columns: "
          + ("equal" if ok else "DIFFERENT"))

    va_path = args.vocab_a or os.path.join(args.a, "categorical-value-counts.csv")
    vb_path = args.vocab_b or os.path.join(args.b, "categorical-value-counts.csv")
    if os.path.exists(va_path) and os.path.exists(vb_path):
        va, vb = vocab(va_path), vocab(vb_path)
        same = va.height == vb.height and va.equals(vb)
        if not same:
            ok = False
            if va.height != vb.height:
                print(f"vocabulary sizes differ: {va.height} vs {vb.height}")
            else:
                d = va.with_row_index().filter(pl.any_horizontal(
                    [pl.col(c) != vb[c] for c in va.columns]))
                print(f"vocabulary: {d.height} rows differ, first:\n{d.head(5)}")
        print(f"vocabulary: {va.height} vs {vb.height} entries: " + ("equal" if same else "DIFFERENT"))
    else:
        print("vocabulary: not compared (CSV missing)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
