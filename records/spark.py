"""The Spark engine's records layer: the session, and an extract loaded as Spark DataFrames with
the loader's rules.

The loader's rules are written once, as the DuckDB SQL of `records.loader` (`_load_sql`,
`_late_sql`); here the same statements are compiled to Spark SQL (`records.dialect.to_spark`) over
the files read by Spark, so rejects, reasons and counts are the DuckDB loader's. Whole-file
problems raise the same `ExtractError`s. A file's row numbers (for rejects and for "every
occurrence after the first") come from Spark's partition order: per-partition counts (a small
aggregate on the driver) give each partition's first row.

A local session binds to loopback only (`SPARK_LOCAL_IP`, `spark.driver.host` and
`spark.driver.bindAddress` 127.0.0.1) with the UI off; `[engine] remote` (or `SPARK_REMOTE`)
connects to a cluster through Spark Connect instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.progress import ProgressFn, no_progress
from records.contract import TABLES, Table
from records.dialect import to_spark
from records.loader import (
    _PREFIX,
    _REASON,
    _RECORD,
    _ROW,
    DIAGNOSES_TABLE,
    REJECTS_TABLE,
    TableReport,
    _late_sql,
    _lit,
    _load_sql,
    _q,
    _Source,
    check_columns,
    csv_problem,
)
from records.manifest import MANIFEST_NAME, ExtractError, Manifest, parse_manifest, read_manifest

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from config.settings import EngineSettings, Settings

CATALOG_PREFIX = "catalog:"
# In a catalog database, the manifest is a one-row table holding manifest.json's text.
MANIFEST_TABLE = "extract_manifest"
_ids = itertools.count(1)
_REPLACEMENT = "\ufffd"  # what Spark's CSV reader reads for bytes that are not UTF-8


def spark_session(engine: EngineSettings) -> SparkSession:
    """The process's Spark session: Spark Connect to `engine`'s remote if one is set, else a
    local session (`engine.master`) bound to loopback, UI off, UTC, few shuffle partitions."""
    from pyspark.sql import SparkSession

    remote = engine.spark_remote()
    if remote:
        builder = SparkSession.builder.remote(remote)
    else:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        builder = (
            SparkSession.builder.master(engine.master)
            .appName("casefinder")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", engine.driver_memory)
            .config("spark.sql.shuffle.partitions", str(engine.shuffle_partitions))
            .config("spark.sql.adaptive.enabled", "true")
        )
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    # Arrow moves frames to and from pandas; ANSI mode keeps integer overflow an error.
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    for key, value in engine.conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not remote:  # Spark's error log quotes the rows it cannot parse: no records in logs
        session.sparkContext.setLogLevel("FATAL")
    return session


@dataclass
class SparkExtract:
    """A loaded extract on Spark: each contract table, `rejects` and `hospital_diagnoses` are
    temporary views named `views[name]`; queries are DuckDB SQL compiled by `records.dialect`."""

    path: Path | str
    spark: SparkSession
    manifest: Manifest
    reports: dict[str, TableReport]
    views: dict[str, str] = field(default_factory=dict)
    made: set[str] = field(default_factory=set)  # tables made by `create_table`
    engine = "spark"

    @property
    def n_rejected(self) -> int:
        return sum(r.rejected for r in self.reports.values())

    def compile(self, sql: str) -> str:
        """`sql` as Spark SQL over this extract's views."""
        return to_spark(sql, self.views)

    def df(self, sql: str) -> DataFrame:
        """`sql` as a Spark DataFrame (nothing is collected)."""
        return self.spark.sql(self.compile(sql))

    def frame(self, sql: str) -> pd.DataFrame:
        """The result of `sql` collected to a pandas frame."""
        return self.df(sql).toPandas()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of `sql` (a small result: counts, names)."""
        return [tuple(r) for r in self.df(sql).collect()]

    def create_table(self, name: str, sql: str) -> None:
        """A temporary view holding the result of `sql` (code lists)."""
        view = f"__cf_x{next(_ids)}_{name}"
        self.df(sql).createOrReplaceTempView(view)
        self.views[name] = view
        self.made.add(name)

    def close(self) -> None:
        """Drop this extract's views and cached tables (the session stays for the process)."""
        for view in self.views.values():
            if self.spark.catalog.tableExists(view):
                self.spark.catalog.dropTempView(view)
        self.views.clear()


def batch_packer() -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function `mapInArrow` runs for `arrow_batches`: each Arrow batch of a partition as
    one row holding it in Arrow's IPC format. Made here, so it travels by value (executors need
    pyarrow, no casefinder module)."""

    def packed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            yield pa.record_batch([pa.array([sink.getvalue().to_pybytes()], pa.binary())], ["ipc"])

    return packed


def arrow_batches(df: DataFrame) -> Iterator[pa.RecordBatch]:
    """The rows of `df`, in its order, as Arrow record batches streamed to the driver one
    partition at a time (`toLocalIterator` over each batch packed in Arrow's IPC format): the
    driver holds a partition's rows, never the whole result, and the query runs once. Batches
    are at most `spark.sql.execution.arrow.maxRecordsPerBatch` rows."""
    import pyarrow as pa

    for row in df.mapInArrow(batch_packer(), "ipc binary").toLocalIterator():
        with pa.ipc.open_stream(pa.py_buffer(bytes(row["ipc"]))) as reader:
            yield from reader


def write_parquet(df: DataFrame, out: str) -> DataFrame:
    """`df` written by Spark itself as a Parquet dataset at `out` (a local path, made absolute,
    or any Hadoop-compatible URI), replacing whatever is there: a folder of part files in
    `df`'s order (`part-00000` first), which `pandas.read_parquet` and `spark.read.parquet` read
    as one table. Nothing is collected to the driver. Returns the written table, read back
    lazily from its files (for counts)."""
    if (local := local_path(out)) is not None:
        out = str(local.resolve())
    df.write.mode("overwrite").parquet(out)
    return df.sparkSession.read.parquet(out)


# ---------------------------------------------------------------------------- sources

_SPARK_TYPES = {
    "string": "VARCHAR", "date": "DATE", "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP",
    "boolean": "BOOLEAN", "tinyint": "TINYINT", "smallint": "SMALLINT", "int": "INTEGER",
    "bigint": "BIGINT", "float": "FLOAT", "double": "DOUBLE",
}  # fmt: skip


def _duck_type(spark_type: str) -> str:
    """A Spark column type in the DuckDB spelling the loader's parse step reads."""
    t = spark_type.lower()
    return "DECIMAL" if t.startswith("decimal") else _SPARK_TYPES.get(t, "OTHER")


def local_path(path: str) -> Path | None:
    """The local path `path` names (a `file://` prefix dropped), or None when it is a
    Hadoop-compatible URI (`s3a://`, `abfss://`, ...)."""
    if "://" in path and not path.startswith("file://"):
        return None
    return Path(path.removeprefix("file://"))


def _exists(spark: SparkSession, uri: str) -> bool:
    """Whether a file exists at `uri` (local path or any Hadoop-compatible URI)."""
    if (local := local_path(uri)) is not None:
        return local.is_file()
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hadoop_path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    return bool(fs.exists(hadoop_path))


def _read_source(spark: SparkSession, folder: str, table: Table) -> tuple[DataFrame, _Source]:
    """The table's file read by Spark (CSV as text columns, Parquet typed), checked like the
    DuckDB loader checks it."""
    from pyspark.errors import PySparkException

    csv_uri, pq_uri = f"{folder}/{table.name}.csv", f"{folder}/{table.name}.parquet"
    csv_name, pq_name = f"{table.name}.csv", f"{table.name}.parquet"
    has_csv, has_pq = _exists(spark, csv_uri), _exists(spark, pq_uri)
    if has_csv and has_pq:
        raise ExtractError(f"{pq_name}, {csv_name}: both present; keep one file per table")
    if not (has_csv or has_pq):
        raise ExtractError(f"{pq_name} / {csv_name}: missing file for table {table.name!r}")
    name = pq_name if has_pq else csv_name
    try:
        if has_pq:
            frame = spark.read.parquet(pq_uri)
        else:
            frame = spark.read.csv(
                csv_uri, header=True, inferSchema=False, mode="FAILFAST", multiLine=True,
                quote='"', escape='"', encoding="UTF-8", comment=None,
            )  # fmt: skip
        columns = [
            (f.name.lstrip("\ufeff").strip(), f.dataType.simpleString()) for f in frame.schema
        ]
    except PySparkException as exc:
        raise ExtractError(f"{name}: unreadable file ({type(exc).__name__})") from None
    if not columns:
        raise ExtractError(f"{name}: empty file (no header row)")
    check_columns(name, table, [n for n, _ in columns])
    frame = frame.toDF(*[n for n, _ in columns])
    source = _Source(
        table,
        Path(name),
        "parquet" if has_pq else "csv",
        tuple((n, "VARCHAR" if not has_pq else _duck_type(t)) for n, t in columns),
    )
    return frame, source


def _catalog_source(spark: SparkSession, database: str, table: Table) -> tuple[DataFrame, _Source]:
    """A catalog table named as in the contract, checked like a file."""
    full = f"{database}.{table.name}"
    if not spark.catalog.tableExists(full):
        raise ExtractError(f"{full}: missing table for table {table.name!r}")
    frame = spark.table(full)
    columns = [(f.name, _duck_type(f.dataType.simpleString())) for f in frame.schema]
    check_columns(full, table, [n for n, _ in columns])
    return frame, _Source(table, Path(full), "parquet", tuple(columns))


def _numbered(
    spark: SparkSession, frame: DataFrame, text: bool = False
) -> tuple[DataFrame, int, bool]:
    """`frame` with a 1-based row number `__cf_row` in read order (partition, then position),
    without a global sort: each partition's first row from per-partition counts. With `text`
    (a CSV file's columns), also whether any value holds U+FFFD, which Spark's CSV reader puts
    where bytes are not UTF-8 (found in the same pass)."""
    from pyspark.sql import functions as F

    ids = frame.withColumn("__cf_id", F.monotonically_increasing_id())
    part = F.shiftright(F.col("__cf_id"), 33)
    replaced = F.lit(False)
    if text:
        for column in frame.columns:
            replaced = replaced | F.coalesce(F.col(column).contains(_REPLACEMENT), F.lit(False))
    rows = ids.groupBy(part.alias("p")).agg(
        F.count(F.lit(1)).alias("n"), F.max(replaced.cast("int")).alias("bad")
    )
    per_part = sorted((r[0], r[1], r[2]) for r in rows.collect())  # one row per partition
    counts = [(p, n) for p, n, _ in per_part]
    any_replaced = any(bad for _, _, bad in per_part)
    offsets, start = [], 0
    for p, n in counts:
        offsets.append((p, start))
        start += n
    if not offsets:
        numbered = ids.withColumn(_ROW, F.lit(0).cast("bigint"))
    else:
        first = F.create_map(*[F.lit(x) for p, o in offsets for x in (p, o)])
        position = F.col("__cf_id").bitwiseAND((1 << 33) - 1)
        numbered = ids.withColumn(_ROW, first[part] + position + 1)
    columns = [_ROW] + [c for c in frame.columns]
    return numbered.select(*columns), start, any_replaced


# ---------------------------------------------------------------------------- loading


def _load_table(
    spark: SparkSession,
    frame: DataFrame,
    source: _Source,
    extract_date: date,
    views: dict[str, str],
    tag: str,
    check_text: Callable[[], None] | None = None,
) -> tuple[DataFrame, DataFrame, TableReport]:
    """One table through the loader's rules: (clean rows, rejects rows, report). `check_text`
    is called when a CSV value holds U+FFFD (it raises for a file that is not UTF-8)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    table = source.table
    raw, read, replaced = _numbered(spark, frame, text=source.kind == "csv")
    if replaced and check_text is not None:
        check_text()
    raw_view = f"__cf_raw{tag}_{table.name}"
    raw.createOrReplaceTempView(raw_view)
    statement = _load_sql(source, raw_view, extract_date)
    select = statement.split(f"CREATE OR REPLACE TABLE {_q(table.name)} AS ", 1)[1]
    typed = spark.sql(to_spark(select)).persist(StorageLevel.MEMORY_AND_DISK)
    typed_view = f"__cf_typed{tag}_{table.name}"
    typed.createOrReplaceTempView(typed_view)

    late = _late_sql(table)
    if late is not None:
        query = late.split(" AS ", 1)[1]
        late_df = spark.sql(to_spark(query, {**views, table.name: typed_view}))
        late_view = f"__cf_late{tag}_{table.name}"
        late_df.createOrReplaceTempView(late_view)
        views[f"__scratch_late_{table.name}"] = late_view
        record = ", ".join(f"{_lit(n)}, r.{_q(n)}" for n, _ in source.columns)
        fails = spark.sql(
            to_spark(
                f"SELECT l.{_ROW} AS __cf_lrow, l.{_REASON} AS __cf_lreason, "
                f"CAST(json_object({record}) AS VARCHAR) AS __cf_lrecord FROM {late_view} AS l "
                f"JOIN {raw_view} AS r ON r.{_ROW} = l.{_ROW}"
            )
        )
        final = typed.join(fails, typed[_ROW] == fails["__cf_lrow"], "left")
        final = final.withColumn(_REASON, F.coalesce(F.col(_REASON), F.col("__cf_lreason")))
        final = final.withColumn(_RECORD, F.coalesce(F.col(_RECORD), F.col("__cf_lrecord")))
        final = final.drop("__cf_lrow", "__cf_lreason", "__cf_lrecord")
    else:
        final = typed
    # A local checkpoint, not persist(): later queries (the next tables' linkage, every feature
    # query) must read this table as loaded. With persist() the cache was never substituted in
    # them (their plans hold monotonically_increasing_id; at 500 people the feature query's plan
    # had 150 file scans and 55 windows, no cached scan): each query re-ran the whole loader from
    # the files, and the feature query ran out of driver memory broadcasting a join at 100,000
    # people (most likely sized from the Parquet files' compressed bytes, well under the rows'
    # size). The checkpoint cuts the plan here: queries scan the loaded rows, and the broadcast
    # threshold stays Spark's default (with it the 100,000-person features step runs). On a
    # cluster a local checkpoint lives on the executors: a lost executor fails the query.
    final = final.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)
    reasons = {
        r[0]: int(r[1])
        for r in final.where(F.col(_REASON).isNotNull()).groupBy(_REASON).count().collect()
    }
    reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    kept = [c for c in final.columns if not c.startswith(_PREFIX)]
    # Only `final` is kept (checkpointed, memory and disk): the clean rows and the rejects are
    # filters of it, so a table is held once (a second cached copy ran a 100,000-person load out
    # of memory).
    clean = final.where(F.col(_REASON).isNull()).select(*kept)
    loaded = clean.count()
    rejects = final.where(F.col(_REASON).isNotNull()).select(
        F.lit(table.name).alias("table_name"),
        F.col(_ROW).alias("row_number"),
        F.col(_REASON).alias("reason"),
        F.col(_RECORD).alias("record"),
    )
    rejected = sum(reasons.values())
    if read != loaded + rejected:
        raise RuntimeError(
            f"loader bug: {table.name} read {read}, loaded {loaded}, rejected {rejected}"
        )
    typed.unpersist()
    # The intermediate views stay until the extract is closed: over Spark Connect a DataFrame is
    # a plan that names its views, resolved again each time it runs.
    views[f"__scratch_raw_{table.name}"] = raw_view
    views[f"__scratch_typed_{table.name}"] = typed_view
    source_path = source.path if isinstance(source.path, Path) else Path(str(source.path))
    return clean, rejects, TableReport(table.name, source_path, read, loaded, rejected, reasons)


def _diagnoses(spells: DataFrame) -> DataFrame:
    """One row per diagnosis of each loaded spell, position from 1 (the DuckDB loader's
    `hospital_diagnoses`: the list split on ';')."""
    from pyspark.sql import functions as F

    return spells.select(
        "spell_id",
        "person_id",
        "admission_date",
        F.posexplode(F.split(F.col("diagnoses"), ";")).alias("position", "icd10"),
    ).select(
        "spell_id",
        "person_id",
        "admission_date",
        (F.col("position") + 1).cast("int").alias("position"),
        "icd10",
    )


def _manifest(spark: SparkSession, source: str) -> Manifest:
    if source.startswith(CATALOG_PREFIX):
        database = source[len(CATALOG_PREFIX) :]
        full = f"{database}.{MANIFEST_TABLE}"
        if not spark.catalog.tableExists(full):
            raise ExtractError(
                f"{full}: missing (a one-row table whose column manifest holds the text of "
                f"{MANIFEST_NAME})"
            )
        rows = spark.table(full).select("manifest").collect()
        if len(rows) != 1:
            raise ExtractError(f"{full}: expected one row, found {len(rows)}")
        return parse_manifest(rows[0][0])
    if (folder := local_path(source)) is not None:
        if not folder.is_dir():
            raise ExtractError(f"{folder}: not a folder")
        return read_manifest(folder)
    uri = f"{source}/{MANIFEST_NAME}"
    if not _exists(spark, uri):
        raise ExtractError(f"{MANIFEST_NAME}: missing from {source}")
    text = "\n".join(r[0] for r in spark.read.text(uri).collect())
    return parse_manifest(text)


def _local_problem(source: _Source, folder: str | None) -> str | None:
    """For a local CSV file, what the DuckDB loader's strict read finds wrong with it, in its
    own words with the line ("line 4: expected 4 columns, found 5", "line 5: not UTF-8";
    `records.loader.csv_problem` streams the file once); None when it reads, or elsewhere."""
    local = None if folder is None else local_path(folder)
    if source.kind != "csv" or local is None:
        return None
    return csv_problem(replace(source, path=local / source.path.name))


def _malformed(source: _Source, folder: str | None) -> str:
    """What is wrong with a CSV file Spark found malformed (at a Hadoop URI, no line)."""
    return _local_problem(source, folder) or "malformed CSV row"


def _text_checker(source: _Source, folder: str | None) -> Callable[[], None]:
    """Raise the DuckDB loader's error for a local CSV file that is not UTF-8 (Spark read its
    bad bytes as U+FFFD); a file that reads (a real U+FFFD) loads on."""

    def check() -> None:
        found = _local_problem(source, folder)
        if found:
            raise ExtractError(f"{source.path.name}: unreadable file ({found})")

    return check


def load_spark_extract(
    source: Path | str, spark: SparkSession, progress: ProgressFn | None = None
) -> SparkExtract:
    """Load and check the extract at `source` on Spark: a folder (local path or any
    Hadoop-compatible URI) as the contract lays it out, or `catalog:DATABASE` (tables named as
    in the contract, the manifest in `DATABASE.extract_manifest`). Same rules, rejects and
    errors as `records.load_extract`."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    progress = progress or no_progress
    text = str(source)
    manifest = _manifest(spark, text)
    tag = str(next(_ids))
    folder: str | None = None  # a catalog has none
    if text.startswith(CATALOG_PREFIX):
        database = text[len(CATALOG_PREFIX) :]
        sources = [_catalog_source(spark, database, t) for t in TABLES.values()]
    else:
        local = local_path(text)
        folder = text if local is None else str(local)
        sources = [_read_source(spark, folder, t) for t in TABLES.values()]
    views: dict[str, str] = {}
    reports: dict[str, TableReport] = {}
    rejects: list[DataFrame] = []
    for frame, src in sources:  # people first: the other tables link to the loaded people
        name = src.table.name
        progress(name, 0.0)
        try:
            clean, rejected, report = _load_table(
                spark, frame, src, manifest.extract_date, views, tag, _text_checker(src, folder)
            )
        except (PySparkException, Py4JJavaError) as exc:  # a CSV row Spark cannot parse
            if "MALFORMED" not in str(exc).upper():
                raise
            reason = _malformed(src, folder)
            raise ExtractError(f"{src.path.name}: unreadable file ({reason})") from None
        view = f"__cf_t{tag}_{name}"
        clean.createOrReplaceTempView(view)
        views[name] = view
        reports[name] = report
        rejects.append(rejected)
        progress(name, 1.0)
    all_rejects = rejects[0]
    for more in rejects[1:]:
        all_rejects = all_rejects.unionByName(more)
    views[REJECTS_TABLE] = f"__cf_t{tag}_{REJECTS_TABLE}"
    all_rejects.createOrReplaceTempView(views[REJECTS_TABLE])
    views[DIAGNOSES_TABLE] = f"__cf_t{tag}_{DIAGNOSES_TABLE}"
    _diagnoses(spark.table(views["hospital_spells"])).createOrReplaceTempView(
        views[DIAGNOSES_TABLE]
    )
    return SparkExtract(path=source, spark=spark, manifest=manifest, reports=reports, views=views)


def open_spark_extract(
    source: Path | str, settings: Settings, progress: ProgressFn | None = None
) -> SparkExtract:
    """`load_spark_extract` in the process's session for `settings.engine`."""
    return load_spark_extract(source, spark_session(settings.engine), progress)
