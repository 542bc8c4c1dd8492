#!/usr/bin/env python3
"""criteo-prepare on Spark: the guide's preprocessing job with the Rust core.

Takes the arguments of criteo-prepare and writes the same files, byte for byte:
OUT/part-r-NNNNN.tfrecord[.gz], OUT/_prepare.json, OUT/_rejects (with
--bad-lines skip), OUT/_SUCCESS last, and in train mode the artifacts
MODEL/categorical-value-counts.csv and MODEL/manifest.json.

How (see README.md beside this file):
 1. Spark reads the input lines (text files, .gz too), numbers them 0..L-1 in
    input order (zipWithIndex's algorithm) and range-partitions them into
    --num-partitions shards: shard p holds lines [p*L/N, (p+1)*L/N), sorted.
 2. Train mode: each task runs `criteo-prepare --stage count` on its shard;
    the driver merges the partial counts with `--stage merge` into --model.
 3. Each task runs `criteo-prepare --stage transform --first-part p
    --first-line p*L/N --num-partitions 1` into its own attempt folder
    OUT/_temporary/<run>/transform/part-p-attempt-<task attempt id>/.
 4. After the job succeeded, the driver renames the part of the attempt Spark
    accepted (one per partition) into OUT, writes _rejects and _prepare.json,
    then _SUCCESS, and deletes OUT/_temporary.

OUT and --model must be on a filesystem that the driver and every executor
see at the same path (local disk in local mode; a shared mount on a cluster).

Run:  python3 prepare.py -i train.tsv -o prepared/train -m train -x model \
          --num-partitions 8 --binary target/release/criteo-prepare
  or  spark-submit --files target/release/criteo-prepare prepare.py ... \
          --binary criteo-prepare
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

PREPARED_FILE = "_prepare.json"
SUCCESS_FILE = "_SUCCESS"
REJECTS_FILE = "_rejects"
TEMPORARY_DIR = "_temporary"
ARTIFACT_FILES = ("categorical-value-counts.csv", "manifest.json")
TASK_ERROR = "SPARKY_TASK_ERROR"
# Test hook (for compare.sh): "transform:P" or "count:P" makes the first
# attempt of partition P fail after its output is complete, so that Spark
# retries it (needs a master allowing retries, such as local[2,4]).
FAULT_ENV = "SPARKY_SPARK_TEST_FAULT"


class PrepareFailure(Exception):
    """An error with a message meant for the user."""


# ---------------------------------------------------------------- CRC32C


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE: list[int] | None = None


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as criteo-prepare records the manifest's."""
    try:
        import google_crc32c  # type: ignore

        return int(google_crc32c.value(data))
    except ImportError:
        pass
    global _CRC32C_TABLE
    if _CRC32C_TABLE is None:
        _CRC32C_TABLE = _crc32c_table()
    table = _CRC32C_TABLE
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- arguments


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="prepare.py",
        description="criteo-prepare on Spark: same arguments, byte-identical outputs "
        "(the Rust stages run inside the Spark tasks).",
    )
    p.add_argument("-b", "--base", help="folder that relative --in, --out and --model paths are taken from")
    p.add_argument(
        "-i",
        "--in",
        dest="input",
        required=True,
        help="input: a TSV file (.gz ok), a folder (its files, except names starting with . or _), "
        "or a glob such as 'day_*.gz' (quote it); also a Hadoop URI (hdfs://, gs://, file://)",
    )
    p.add_argument("-o", "--out", required=True, help="output folder; empty or absent unless --overwrite")
    p.add_argument("-m", "--mode", required=True, choices=["train", "evaluate", "predict"])
    p.add_argument("-x", "--model", required=True, help="artifacts folder: written in train mode, read otherwise")
    p.add_argument("--num-partitions", type=int, default=8, help="part files (and Spark tasks) [default: 8]")
    p.add_argument("--compression", choices=["none", "gzip"], default="none")
    p.add_argument(
        "--format",
        choices=["tfrecord", "parquet"],
        default="tfrecord",
        help="output format [default: tfrecord; parquet also works but is not part of the byte-identity proof]",
    )
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--bad-lines", choices=["error", "skip"], default="error")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-sync", action="store_true", help="passed to the Rust stages (parts are not fsynced)")
    p.add_argument(
        "--master", default=None, help="Spark master [default: the one spark-submit was given, else local[2]]"
    )
    p.add_argument(
        "--binary",
        default="criteo-prepare",
        help="criteo-prepare on the driver and the executors: a path, or a bare name looked up "
        "first among the files shipped with spark-submit --files (SparkFiles), then on PATH "
        "[default: criteo-prepare]",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages on standard error")
    a = p.parse_args(argv)
    if a.num_partitions < 1:
        p.error("--num-partitions must be at least 1")
    if a.min_count < 1:
        p.error("--min-count must be at least 1")
    return a


def join_base(base: str | None, path: str) -> str:
    if base and not os.path.isabs(path) and not has_scheme(path) and path != "-":
        return os.path.join(base, path)
    return path


def has_scheme(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", path) is not None  # hdfs://..., gs://..., file:/...


# ---------------------------------------------------------------- inputs


def glob_match(pattern: str, name: str) -> bool:
    """criteo-prepare's glob: `*` any run, `?` one character."""
    p = n = 0
    star, mark = -1, 0
    while n < len(name):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[n]):
            p += 1
            n += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, n
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            n = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _data_name(name: str) -> bool:
    return not (name.startswith(".") or name.startswith("_"))


def folder_files(d: str) -> list[str]:
    names = [n for n in os.listdir(d) if _data_name(n) and os.path.isfile(os.path.join(d, n))]
    names.sort(key=os.fsencode)
    return [os.path.join(d, n) for n in names]


def resolve_local(spec: str) -> list[str]:
    """Resolves --in exactly as criteo-prepare does; returns the display names."""
    if spec == "-":
        raise PrepareFailure("standard input (-i -) cannot be read by Spark; give a file, folder or glob")
    name = os.path.basename(spec)
    if ("*" in name or "?" in name) and not os.path.exists(spec):
        d = os.path.dirname(spec) or "."
        if not os.path.isdir(d):
            raise PrepareFailure(f"{d}: not found")
        files = [f for f in folder_files(d) if glob_match(name, os.path.basename(f))]
        if not files:
            raise PrepareFailure(f"{spec}: no file matches")
        return files
    if os.path.isdir(spec):
        files = folder_files(spec)
        if not files:
            raise PrepareFailure(f"{spec} (an empty folder): no file matches")
        return files
    if os.path.isfile(spec):
        return [spec]
    raise PrepareFailure(f"{spec}: not found")


def resolve_hadoop(sc, spec: str) -> list[str]:
    """The same rules for a Hadoop URI, through the Hadoop FileSystem API."""
    jvm = sc._jvm
    conf = sc._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(spec)
    fs = path.getFileSystem(conf)
    name = path.getName()

    def listing(d):
        out = []
        for st in fs.listStatus(d):
            n = st.getPath().getName()
            if st.isFile() and _data_name(n):
                out.append(st.getPath().toString())
        out.sort(key=lambda s: os.fsencode(s))
        return out

    if ("*" in name or "?" in name) and not fs.exists(path):
        files = [f for f in listing(path.getParent()) if glob_match(name, f.rsplit("/", 1)[-1])]
        if not files:
            raise PrepareFailure(f"{spec}: no file matches")
        return files
    if not fs.exists(path):
        raise PrepareFailure(f"{spec}: not found")
    if fs.getFileStatus(path).isDirectory():
        files = listing(path)
        if not files:
            raise PrepareFailure(f"{spec} (an empty folder): no file matches")
        return files
    return [path.toString()]


def spark_path(display: str) -> str:
    """The path handed to sc.textFile for one input file (never a glob or a list)."""
    if "," in display:
        raise PrepareFailure(f"{display}: Spark cannot read a path with a comma in it; rename the file")
    uri = display if has_scheme(display) else "file://" + os.path.abspath(display)
    return re.sub(r"([\\{}\[\]*?])", r"\\\1", uri)


# ---------------------------------------------------------------- files


def fsync_dir(d: str) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, sync: bool = True) -> None:
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir(d)


def dir_has_entries(d: str) -> bool:
    try:
        return any(True for _ in os.scandir(d))
    except FileNotFoundError:
        return False


def artifacts_exist(model: str) -> bool:
    return any(os.path.exists(os.path.join(model, f)) for f in ARTIFACT_FILES)


# ---------------------------------------------------------------- the binary


def find_binary(spec: str) -> str:
    """Finds criteo-prepare where this code runs (the driver or a task)."""
    if os.sep not in spec:
        try:
            from pyspark import SparkFiles

            shipped = SparkFiles.get(spec)
            if os.path.isfile(shipped):
                return ensure_executable(os.path.abspath(shipped))
        except Exception:
            pass
        found = shutil.which(spec)
        if found:
            return found
        raise FileNotFoundError(f"{spec}: neither shipped with spark-submit --files nor on PATH (pass --binary PATH)")
    if not os.path.isfile(spec):
        raise FileNotFoundError(f"{spec}: no such file (--binary)")
    return ensure_executable(spec)


def ensure_executable(path: str) -> str:
    if os.access(path, os.X_OK):
        return path
    try:
        os.chmod(path, os.stat(path).st_mode | 0o111)
        return path
    except OSError:
        d = tempfile.mkdtemp(prefix="sparky-bin-")
        copy = os.path.join(d, os.path.basename(path))
        shutil.copy(path, copy)
        os.chmod(copy, 0o755)
        return copy


def _die_with_parent() -> None:
    """Runs in the child before exec: the Rust stage is killed with its Python
    worker (for example when Spark kills a losing speculative attempt)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def run_binary(cmd: list[str]) -> str:
    """Runs a stage; returns its standard error, raises with it on failure."""
    kw = {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {err.strip()}")
    return err


def common_flags(a: argparse.Namespace, threads: int | None) -> list[str]:
    flags = ["-q", "--bad-lines", a.bad_lines]
    if threads:
        flags += ["--threads", str(threads)]
    return flags


# ---------------------------------------------------------------- line bookkeeping


class Lines:
    """Where the L numbered lines come from, and how they are sharded."""

    def __init__(self, names: list[str], file_lines: list[int], n: int):
        self.names = names
        self.file_starts = [0]
        for c in file_lines:
            self.file_starts.append(self.file_starts[-1] + c)
        self.total = self.file_starts[-1]
        self.n = n
        self.starts = [p * self.total // n for p in range(n + 1)]

    def part_of(self, g: int) -> int:
        return bisect.bisect_right(self.starts, g) - 1

    def locate(self, g: int) -> tuple[str, int]:
        """(input name, 1-based line in it) of global line g."""
        f = bisect.bisect_right(self.file_starts, g) - 1  # the last file starting at or before g: not empty
        return self.names[f], g - self.file_starts[f] + 1


def local_scratch() -> str:
    dirs = os.environ.get("SPARK_LOCAL_DIRS")
    root = dirs.split(",")[0] if dirs else tempfile.gettempdir()
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix="sparky-shard-", dir=root)


def write_shard(items, path: str) -> int:
    n = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for _, line in items:
            f.write(line)
            f.write(b"\n")
            n += 1
    return n


def rewrite_shard_error(msg: str, shard: str, first_line: int, lines: Lines) -> str:
    """Names the original input and line instead of the shard file in a
    --bad-lines error message (`SHARD:LINE: ...`)."""

    def sub(m):
        name, line = lines.locate(first_line + int(m.group(1)) - 1)
        return f"{name}:{line}:"

    return re.sub(re.escape(shard) + r":(\d+):", sub, msg)


def shard_task(a, binary_spec, lines: Lines, run_dir: str, stage: str, fault: str | None):
    """The function of one Spark task: shard p in, a stage's output folder out."""

    def task(p, items):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        attempt = ctx.taskAttemptId()
        first = lines.starts[p]
        expected = lines.starts[p + 1] - first
        scratch = local_scratch()
        try:
            binary = find_binary(binary_spec)
            shard = os.path.join(scratch, f"shard-{p:05d}.tsv")
            got = write_shard(items, shard)
            if got != expected:
                raise RuntimeError(f"shard {p} has {got} lines, expected {expected} (a partitioning bug)")
            out = os.path.join(run_dir, stage, f"part-{p:05d}-attempt-{attempt}")
            if stage == "count":
                os.makedirs(out, exist_ok=True)
                cmd = [
                    binary,
                    "--stage",
                    "count",
                    "-m",
                    "train",
                    "-i",
                    shard,
                    "-o",
                    os.path.join(out, "counts.csv"),
                    "-x",
                    os.path.join(scratch, "unused-model"),
                ]
            else:
                cmd = [
                    binary,
                    "--stage",
                    "transform",
                    "-m",
                    a.mode,
                    "-i",
                    shard,
                    "-o",
                    out,
                    "-x",
                    a.model_abs,
                    "--num-partitions",
                    "1",
                    "--first-part",
                    str(p),
                    "--first-line",
                    str(first),
                    "--compression",
                    a.compression,
                    "--format",
                    a.format,
                ]
                if a.no_sync:
                    cmd.append("--no-sync")
            cmd += common_flags(a, ctx.cpus())
            try:
                run_binary(cmd)
            except RuntimeError as e:
                raise RuntimeError(rewrite_shard_error(str(e), shard, first, lines)) from None
            if fault == f"{stage}:{p}" and ctx.attemptNumber() == 0:
                raise RuntimeError(f"injected failure ({FAULT_ENV}) after the output was written")
            yield (p, attempt, out)
        except Exception as e:
            raise RuntimeError(f"{TASK_ERROR} {stage} of part {p} (task attempt {attempt}): {e}") from e
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return task


def task_error(e: BaseException) -> str:
    text = str(e)
    found = re.findall(TASK_ERROR + r" (.*)", text)
    if found:
        return found[-1].strip()
    return text.strip().splitlines()[0] if text.strip() else repr(e)


# ---------------------------------------------------------------- the job


def log(a, msg: str) -> None:
    if not a.quiet:
        print(f"prepare.py: {msg}", file=sys.stderr, flush=True)


def start_spark(a):
    from pyspark import SparkConf, SparkContext

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # run by spark-submit (which set the master)
    SparkContext._ensure_initialized()  # loads spark-submit's settings into SparkConf()
    conf = SparkConf()
    if a.master:
        conf.setMaster(a.master)
    elif not submitted:
        conf.setMaster("local[2]")
    if not submitted:
        conf.setAppName("criteo-prepare (sparky, Rust core)")
    conf.set("spark.ui.showConsoleProgress", "false")
    if conf.get("spark.master").startswith("local"):
        conf.setIfMissing("spark.ui.enabled", "false")
    sc = SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    # criteo-prepare splits lines at \n only (a \r stays in the line); Hadoop's
    # default also splits at \r and \r\n.
    sc._jsc.hadoopConfiguration().set("textinputformat.record.delimiter", "\n")
    return sc


def check_outputs(a) -> None:
    out, model = a.out_path, a.model_path
    if os.path.exists(out) and not os.path.isdir(out):
        raise PrepareFailure(f"{out} is not a folder")
    if dir_has_entries(out) and not a.overwrite:
        raise PrepareFailure(f"{out} is not empty; pass --overwrite to replace its contents")
    if a.mode == "train":
        if artifacts_exist(model) and not a.overwrite:
            raise PrepareFailure(f"{model} already holds artifacts; pass --overwrite to replace them")
    else:
        missing = [f for f in ARTIFACT_FILES if not os.path.isfile(os.path.join(model, f))]
        if missing:
            raise PrepareFailure(f"{model}: no {', '.join(missing)} (run train mode first, with the same --model)")


def commit_counts(results, run_dir: str) -> str:
    """Moves the accepted attempt's partial counts of each partition into one folder."""
    counts_dir = os.path.join(run_dir, "counts")
    os.makedirs(counts_dir, exist_ok=True)
    for p, _attempt, out in sorted(results):
        os.replace(os.path.join(out, "counts.csv"), os.path.join(counts_dir, f"counts-{p:05d}.csv"))
    return counts_dir


def read_json(path: str) -> dict:
    with open(path, "rb") as f:
        return json.loads(f.read())


def commit_parts(a, results, lines: Lines, manifest_crc: int) -> dict:
    """Checks every accepted attempt, moves its part into OUT, writes _rejects,
    _prepare.json, then _SUCCESS. Returns the job's _prepare.json."""
    out = a.out_path
    results = sorted(results)
    if [r[0] for r in results] != list(range(lines.n)):
        raise PrepareFailure(f"expected one result per partition, got {[r[0] for r in results]}")
    shards = []
    for p, _attempt, d in results:
        m = read_json(os.path.join(d, PREPARED_FILE))
        if not os.path.exists(os.path.join(d, SUCCESS_FILE)):
            raise PrepareFailure(f"{d}: no {SUCCESS_FILE}")
        if m["first_line"] != lines.starts[p] or m["lines"] != lines.starts[p + 1] - lines.starts[p]:
            raise PrepareFailure(f"{d}: lines {m['first_line']}+{m['lines']} are not those of part {p}")
        if len(m["parts"]) != 1:
            raise PrepareFailure(f"{d}: {len(m['parts'])} parts, expected 1")
        if m["artifacts"]["manifest_crc32c"] != manifest_crc:
            raise PrepareFailure(
                f"{d}: part {p} was written with other artifacts (manifest CRC32C "
                f"{m['artifacts']['manifest_crc32c']}, expected {manifest_crc}); were they changed during the job?"
            )
        shards.append((p, d, m))

    # Rejected lines, renamed to the original input and line, in input order.
    rejects = []
    if a.bad_lines == "skip":
        for p, d, _m in shards:
            with open(os.path.join(d, REJECTS_FILE), "rb") as f:
                rows = f.read().split(b"\n")[1:]  # after the header; bytes, split at \n only
            for row in rows:
                if row:
                    _shard, line, reason = row.split(b"\t", 2)
                    name, n = lines.locate(lines.starts[p] + int(line) - 1)
                    rejects.append(os.fsencode(name) + f"\t{n}\t".encode() + reason + b"\n")

    # The commit: one rename per part (same filesystem: atomic).
    names = set()
    for _p, d, m in shards:
        f = m["parts"][0]["file"]
        names.add(f)
        os.replace(os.path.join(d, f), os.path.join(out, f))
    for e in os.scandir(out):  # parts of an earlier run that this one did not rewrite (--overwrite)
        if e.name.startswith("part-") and e.name not in names:
            os.unlink(e.path)
    rejects_path = os.path.join(out, REJECTS_FILE)
    if a.bad_lines == "skip":
        write_atomic(rejects_path, b"input\tline\treason\n" + b"".join(rejects))
    elif os.path.exists(rejects_path):
        os.unlink(rejects_path)
    first = shards[0][2]
    job = {
        "format": first["format"],
        "format_version": first["format_version"],
        "created_by": first["created_by"],
        "mode": a.mode,
        "artifacts": {"dir": os.path.realpath(a.model_path), "manifest_crc32c": manifest_crc},
        "inputs": lines.names,
        "lines": sum(m["lines"] for _, _, m in shards),
        "rows": sum(m["rows"] for _, _, m in shards),
        "rejected": sum(m["rejected"] for _, _, m in shards),
        "first_line": 0,
        "output_format": first["output_format"],
        "compression": first["compression"],
        "parts": [m["parts"][0] for _, _, m in shards],
    }
    if not a.no_sync:
        fsync_dir(out)
    text = json.dumps(job, indent=2, ensure_ascii=False) + "\n"
    write_atomic(os.path.join(out, PREPARED_FILE), text.encode("utf-8"))
    write_atomic(os.path.join(out, SUCCESS_FILE), b"")
    return job


def run(a) -> dict:
    t0 = time.time()
    a.out_path = join_base(a.base, a.out)
    a.model_path = join_base(a.base, a.model)
    in_spec = join_base(a.base, a.input)
    for what, attr in (("--out", "out_path"), ("--model", "model_path")):
        path = getattr(a, attr)
        if path.startswith("file:/"):
            setattr(a, attr, "/" + path[len("file:") :].lstrip("/"))
        elif has_scheme(path):
            raise PrepareFailure(
                f"{what} {path}: must be a path of a filesystem mounted on the driver and "
                "every executor (see integrations/spark/README.md)"
            )
    a.model_abs = os.path.abspath(a.model_path)
    if os.sep in a.binary and os.path.exists(a.binary):
        a.binary = os.path.abspath(a.binary)
    names = None if has_scheme(in_spec) else resolve_local(in_spec)
    check_outputs(a)
    fault = os.environ.get(FAULT_ENV) or None

    sc = start_spark(a)
    master = sc.master
    t_spark = time.time()
    run_dir = None
    try:
        binary = find_binary(a.binary)  # the driver's copy: for the merge, and to fail early
        if names is None:
            names = resolve_hadoop(sc, in_spec)
        rdds = [sc.textFile(spark_path(n), use_unicode=False) for n in names]
        per_file_partitions = [r.getNumPartitions() for r in rdds]
        text = rdds[0] if len(rdds) == 1 else sc.union(rdds)

        # Global line numbers: zipWithIndex's algorithm (count each input
        # partition, then number the lines from the prefix sums), keeping
        # the counts so that each line's input file and line are known.
        sizes = text.mapPartitions(lambda it: [sum(1 for _ in it)]).collect()
        t_count = time.time()
        file_lines, i = [], 0
        for k in per_file_partitions:
            file_lines.append(sum(sizes[i : i + k]))
            i += k
        lines = Lines(names, file_lines, a.num_partitions)
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        log(
            a,
            f"{lines.total} lines in {len(names)} input(s), {len(sizes)} input partitions, "
            f"{a.num_partitions} output partitions",
        )

        def number(i, it, offsets=offsets):
            return enumerate(it, offsets[i])

        # Shard p = lines [p*L/N, (p+1)*L/N), in input order.
        shards = text.mapPartitionsWithIndex(number).repartitionAndSortWithinPartitions(
            a.num_partitions, lines.part_of, ascending=True
        )

        os.makedirs(a.out_path, exist_ok=True)
        if a.overwrite:  # the folder stops looking complete before anything changes
            for f in (SUCCESS_FILE, PREPARED_FILE):
                if os.path.exists(os.path.join(a.out_path, f)):
                    os.unlink(os.path.join(a.out_path, f))
            shutil.rmtree(os.path.join(a.out_path, TEMPORARY_DIR), ignore_errors=True)
        run_dir = os.path.join(os.path.abspath(a.out_path), TEMPORARY_DIR, uuid.uuid4().hex)
        os.makedirs(run_dir)

        timings = {"spark_start_s": round(t_spark - t0, 3), "line_count_s": round(t_count - t_spark, 3)}
        t1 = time.time()
        if a.mode == "train":
            results = shards.mapPartitionsWithIndex(shard_task(a, a.binary, lines, run_dir, "count", fault)).collect()
            counts_dir = commit_counts(results, run_dir)
            t2 = time.time()
            timings["count_s"] = round(t2 - t1, 3)
            cmd = [
                binary,
                "--stage",
                "merge",
                "-m",
                "train",
                "-i",
                counts_dir,
                "-o",
                os.path.join(run_dir, "unused"),
                "-x",
                a.model_path,
                "--min-count",
                str(a.min_count),
                "-q",
            ]
            if a.overwrite:
                cmd.append("--overwrite")
            run_binary(cmd)
            t1 = time.time()
            timings["merge_s"] = round(t1 - t2, 3)
            log(a, f"artifacts written to {a.model_path}")
        with open(os.path.join(a.model_path, "manifest.json"), "rb") as f:
            manifest_crc = crc32c(f.read())
        results = shards.mapPartitionsWithIndex(shard_task(a, a.binary, lines, run_dir, "transform", fault)).collect()
        t2 = time.time()
        timings["transform_s"] = round(t2 - t1, 3)
        job = commit_parts(a, results, lines, manifest_crc)
        shutil.rmtree(os.path.join(a.out_path, TEMPORARY_DIR), ignore_errors=True)
        timings["commit_s"] = round(time.time() - t2, 3)
    except Exception as e:
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(run_dir))
            except OSError:
                pass
        if isinstance(e, PrepareFailure):
            raise
        raise PrepareFailure(task_error(e)) from e
    finally:
        sc.stop()
    t_end = time.time()
    summary = {
        "mode": a.mode,
        "lines": job["lines"],
        "rows": job["rows"],
        "rejected": job["rejected"],
        "parts": len(job["parts"]),
        "bytes": sum(p["bytes"] for p in job["parts"]),
        "master": master,
        "seconds": round(t_end - t0, 3),
        "job_seconds": round(t_end - t_spark, 3),
        **timings,
    }
    summary["rows_per_s"] = round(job["rows"] / max(summary["seconds"], 1e-9))
    summary["job_rows_per_s"] = round(job["rows"] / max(summary["job_seconds"], 1e-9))
    return summary


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        summary = run(a)
    except PrepareFailure as e:
        print(f"prepare.py: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
