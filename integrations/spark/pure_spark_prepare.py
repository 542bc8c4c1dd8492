#!/usr/bin/env python3
"""The guide's preprocessing job in pure PySpark (DataFrames), for comparison.

Same rules as criteo-prepare: a missing integer becomes -10; a missing
categorical value is a category of its own; each categorical value is replaced
by its rank in a per-feature vocabulary sorted by descending count, ties by
value (rank 1 = most frequent; id 0 = not in the vocabulary, or seen fewer than
--min-count times). The steps are the guide's: count, rank, join, write.

 - train:    count (feature, value) pairs, rank them with a window function,
             write the vocabulary to MODEL/vocabulary (Parquet) and
             MODEL/vocabulary-csv (feature,value,count,rank, as criteo-prepare's
             categorical-value-counts.csv), then join and write OUT as Parquet;
 - evaluate: read MODEL/vocabulary, join and write OUT as Parquet.

This is for measuring throughput, not a replacement: it writes Parquet (Spark
has no built-in TFRecord writer), does not reject malformed lines (a bad
integer becomes null), does not keep the input order in the output, and
writes no _prepare.json.

Prints one JSON line: rows, seconds (with Spark's start), job_seconds, rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

NUM_INT, NUM_CAT = 13, 26
MISSING_INT = -10


def parse_args(argv):
    p = argparse.ArgumentParser(prog="pure_spark_prepare.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-b", "--base")
    p.add_argument("-i", "--in", dest="input", required=True, help="TSV file(s): a path or glob Spark understands")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("-m", "--mode", required=True, choices=["train", "evaluate"])
    p.add_argument("-x", "--model", required=True)
    p.add_argument("--num-partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--master", default=None, help="[default: spark-submit's, else local[2]]")
    return p.parse_args(argv)


def join_base(base, path):
    return os.path.join(base, path) if base and not os.path.isabs(path) and "://" not in path else path


def main(argv):
    a = parse_args(argv)
    t0 = time.time()
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    b = SparkSession.builder.appName("criteo-prepare (pure PySpark)")
    if a.master or not submitted:
        b = b.master(a.master or "local[2]")
    b = b.config("spark.sql.shuffle.partitions", str(a.num_partitions)).config("spark.ui.showConsoleProgress", "false")
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    t_spark = time.time()

    inp, out, model = (join_base(a.base, x) for x in (a.input, a.out, a.model))
    mode = "overwrite" if a.overwrite else "errorifexists"

    # Parse: one string column per field; split keeps empty fields.
    fields = F.split(F.col("value"), "\t", -1)

    def field(k):  # null past the end of a short line (padded with missing values)
        return F.coalesce(F.get(fields, k), F.lit(""))

    ints = [
        F.when(field(1 + i) == "", F.lit(MISSING_INT))
        .otherwise(field(1 + i).try_cast("long"))
        .alias(f"integer-feature-{i + 1}")
        for i in range(NUM_INT)
    ]
    cats = [field(1 + NUM_INT + j).alias(f"c{j + 1}") for j in range(NUM_CAT)]
    rows = spark.read.option("lineSep", "\n").text(inp).select(field(0).try_cast("long").alias("clicked"), *ints, *cats)

    if a.mode == "train":
        # Count: one (feature, value) pair per categorical field.
        pairs = rows.select(
            F.explode(
                F.array(*[F.struct(F.lit(j + 1).alias("f"), F.col(f"c{j + 1}").alias("v")) for j in range(NUM_CAT)])
            ).alias("p")
        ).select("p.f", "p.v")
        counts = pairs.groupBy("f", "v").count()
        # Rank: descending count, ties by value.
        w = Window.partitionBy("f").orderBy(F.desc("count"), F.asc("v"))
        vocab = counts.where(F.col("count") >= a.min_count).withColumn("rank", F.row_number().over(w))
        vocab.write.mode(mode).parquet(os.path.join(model, "vocabulary"))
        (
            spark.read.parquet(os.path.join(model, "vocabulary"))
            .select(
                F.concat(F.lit("categorical-feature-"), F.col("f")).alias("feature"),
                F.col("v").alias("value"),
                "count",
                "rank",
            )
            .coalesce(1)
            .write.mode(mode)
            .option("header", True)
            .option("emptyValue", "")
            .csv(os.path.join(model, "vocabulary-csv"))
        )
    vocab = spark.read.parquet(os.path.join(model, "vocabulary")).cache()  # read once for the 26 joins

    # Join: each categorical column with its feature's vocabulary (Spark
    # broadcasts the small ones); not in the vocabulary -> 0.
    data = rows
    for j in range(NUM_CAT):
        name = f"categorical-feature-{j + 1}"
        v = vocab.where(F.col("f") == j + 1).select(F.col("v").alias(f"c{j + 1}"), F.col("rank").alias(name))
        data = data.join(v, on=f"c{j + 1}", how="left")
    data = data.select(
        "clicked",
        *[f"integer-feature-{i + 1}" for i in range(NUM_INT)],
        *[
            F.coalesce(F.col(f"categorical-feature-{j + 1}"), F.lit(0))
            .cast("long")
            .alias(f"categorical-feature-{j + 1}")
            for j in range(NUM_CAT)
        ],
    )
    # Write.
    data.write.mode(mode).parquet(out)
    n = spark.read.parquet(out).count()
    t_end = time.time()
    spark.stop()
    s = {
        "mode": a.mode,
        "rows": n,
        "seconds": round(t_end - t0, 3),
        "job_seconds": round(t_end - t_spark, 3),
        "spark_start_s": round(t_spark - t0, 3),
    }
    s["rows_per_s"] = round(n / max(s["seconds"], 1e-9))
    s["job_rows_per_s"] = round(n / max(s["job_seconds"], 1e-9))
    print(json.dumps(s), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
