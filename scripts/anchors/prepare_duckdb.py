#!/usr/bin/env python3
"""criteo-prepare's train-mode job done with DuckDB: the speed anchor of issue 16.

Usage: prepare_duckdb.py TRAIN.tsv OUT_DIR [--plan memory|scan] [--compression uncompressed|snappy|zstd|gzip]
                         [--threads N] [--vocab per-column|long]

Input: Criteo TSV (label, I1..I13, C1..C26; tab-separated; no header; an
empty field is a missing value). The job, as sparky's criteo-prepare -m train
does it:
  1. count every value of each categorical column (missing counts too, as the
     empty text);
  2. rank each column's values by count descending, ties by the value's text
     ascending in byte order (rank 1 = most frequent);
  3. replace each categorical value by its rank, each missing integer by -10;
  4. write Parquet: INT64 columns clicked, integer-feature-1..13,
     categorical-feature-1..26, in input order, uncompressed by default (as
     sparky's default), row groups of the tool's default size (sparky's
     are at most 2^20 rows and, with its 8 parts, 1/8 of the rows up to
     8M rows);
and the vocabulary as OUT_DIR/categorical-value-counts.csv
(feature,value,count,rank; feature order, then rank order).

Output: OUT_DIR/part-00000.parquet and the CSV. Prints the wall time of the
whole job and of its steps on stderr, and one JSON line on stdout.

Plans (all SQL, run by DuckDB's parallel engine on all cores by default):
  memory  load the TSV once into an in-memory table (parallel CSV reader),
          count and rank from it, then map by 26 left joins straight into
          COPY ... TO parquet.
  scan    no table: a view over read_csv, so each of the 26 counts and the
          mapping reads the TSV again (10x slower here).
Vocabulary queries:
  per-column  26 GROUP BY + row_number() queries (default);
  long        one UNPIVOT to (feature, value), one GROUP BY, one windowed
              row_number() partitioned by feature.
"""
import argparse
import json
import os
import sys
import time

import duckdb

INTS, CATS = 13, 26
MISSING_INTEGER = -10


def q(s):
    return "'" + s.replace("'", "''") + "'"


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("train")
    a.add_argument("out")
    a.add_argument("--plan", choices=["memory", "scan"], default="memory")
    a.add_argument("--vocab", choices=["per-column", "long"], default="per-column")
    a.add_argument("--compression", default="uncompressed")
    a.add_argument("--row-group-size", type=int, default=None, help="rows per row group (default: the tool's)")
    a.add_argument("--unordered", action="store_true",
                   help="leave rows in whatever order the joins give (not the same job: sparky keeps input order)")
    a.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: its own, all cores)")
    args = a.parse_args()
    os.makedirs(args.out, exist_ok=True)
    part = os.path.join(args.out, "part-00000.parquet")
    csv = os.path.join(args.out, "categorical-value-counts.csv")

    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    # Input order is kept (the default; said here because the output relies on it).
    con.execute("SET preserve_insertion_order = true")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]

    columns = ", ".join([f"'label': 'BIGINT'"] + [f"'I{j}': 'BIGINT'" for j in range(1, INTS + 1)]
                        + [f"'C{c}': 'VARCHAR'" for c in range(1, CATS + 1)])
    reader = (f"read_csv({q(args.train)}, delim = '\\t', header = false, quote = '', escape = '', "
              f"auto_detect = false, null_padding = true, columns = {{{columns}}})")
    # Missing categorical values are a value of their own: the empty text.
    cleaned = ("SELECT label, " + ", ".join(f"I{j}" for j in range(1, INTS + 1)) + ", "
               + ", ".join(f"coalesce(C{c}, '') AS C{c}" for c in range(1, CATS + 1)) + f" FROM {reader}")

    steps = {}
    t0 = time.monotonic()
    if args.plan == "memory":
        con.execute(f"CREATE TEMP TABLE raw AS {cleaned}")
        steps["read"] = time.monotonic() - t0
        row = "rowid"
    else:
        # A view: each query below reads the TSV again. row_number() over the
        # scan in insertion order numbers the lines.
        con.execute(f"CREATE TEMP VIEW raw AS SELECT row_number() OVER () AS line, * FROM ({cleaned})")
        row = "line"
    source = "raw"

    t = time.monotonic()
    if args.vocab == "per-column":
        for c in range(1, CATS + 1):
            con.execute(f"""
                CREATE TEMP TABLE v{c} AS
                SELECT C{c} AS value, n AS count, row_number() OVER (ORDER BY n DESC, C{c}) AS rank
                FROM (SELECT C{c}, count(*) AS n FROM {source} GROUP BY C{c})""")
        con.execute("CREATE TEMP VIEW vocab AS " + " UNION ALL ".join(
            f"SELECT {c} AS f, value, count, rank FROM v{c}" for c in range(1, CATS + 1)))
    else:
        cols = ", ".join(f"C{c}" for c in range(1, CATS + 1))
        con.execute(f"""
            CREATE TEMP TABLE vocab AS
            SELECT f, value, n AS count, row_number() OVER (PARTITION BY f ORDER BY n DESC, value) AS rank
            FROM (SELECT CAST(substr(name, 2) AS INTEGER) AS f, value, count(*) AS n
                  FROM (UNPIVOT (SELECT {cols} FROM {source}) ON {cols} INTO NAME name VALUE value)
                  GROUP BY ALL)""")
        for c in range(1, CATS + 1):
            con.execute(f"CREATE TEMP VIEW v{c} AS SELECT value, rank FROM vocab WHERE f = {c}")
    steps["count+rank"] = time.monotonic() - t

    t = time.monotonic()
    select = ", ".join(
        ["r.label AS clicked"]
        + [f'coalesce(r.I{j}, {MISSING_INTEGER}) AS "integer-feature-{j}"' for j in range(1, INTS + 1)]
        + [f'v{c}.rank::BIGINT AS "categorical-feature-{c}"' for c in range(1, CATS + 1)])
    joins = " ".join(f"LEFT JOIN v{c} ON r.C{c} = v{c}.value" for c in range(1, CATS + 1))
    # DuckDB's hash joins do not keep the probe side's order: sort back into
    # input order (sparky's parts keep it), unless --unordered.
    order = "" if args.unordered else f" ORDER BY r.{row}"
    rg = f", ROW_GROUP_SIZE {args.row_group_size}" if args.row_group_size else ""
    con.execute(f"COPY (SELECT {select} FROM {source} r {joins}{order}) TO {q(part)} "
                f"(FORMAT parquet, COMPRESSION {args.compression}{rg})")
    steps["map+write"] = time.monotonic() - t

    t = time.monotonic()
    con.execute(f"""COPY (SELECT 'categorical-feature-' || f AS feature, value, count, rank FROM vocab
                          ORDER BY f, rank) TO {q(csv)} (HEADER, DELIMITER ',')""")
    steps["vocabulary csv"] = time.monotonic() - t
    wall = time.monotonic() - t0

    rows = con.execute(f"SELECT count(*) FROM read_parquet({q(part)})").fetchone()[0]
    distinct = con.execute("SELECT count(*) FROM vocab").fetchone()[0]
    print(f"duckdb {duckdb.__version__} plan={args.plan} vocab={args.vocab}: {rows} rows, {distinct} distinct "
          f"values, {wall:.2f} s ({rows / wall:,.0f} rows/s); "
          + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()), file=sys.stderr)
    print(json.dumps({"tool": "duckdb", "version": duckdb.__version__, "plan": args.plan, "vocab": args.vocab,
                      "rows": rows, "distinct": distinct, "wall_s": round(wall, 3), "threads": threads,
                      "steps_s": {k: round(v, 3) for k, v in steps.items()}}))


if __name__ == "__main__":
    sys.exit(main())
