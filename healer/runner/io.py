"""Reading inputs and writing outputs, with an atomic publish for path outputs.

Paths go through Hadoop's FileSystem (through Spark's JVM), so the same code publishes to
a local disk, HDFS or an object store that supports rename.
"""

from __future__ import annotations

from healer.errors import MissingInput  # raised here; callers catch io.MissingInput
from healer.manifest import InputSpec, OutputSpec


def read_input(spark, spec: InputSpec):
    """A DataFrame for one input spec; MissingInput when its path or table is not there."""
    if spec.table is not None:
        if not spark.catalog.tableExists(spec.table):
            raise MissingInput(f"input '{spec.name}': table {spec.table} not found")
        return spark.table(spec.table)
    if not path_exists(spark, spec.path):
        raise MissingInput(f"input '{spec.name}': path {spec.path} not found")
    reader = spark.read.format(spec.format)
    options = dict(spec.options)
    if spec.format == "csv":
        options.setdefault("header", "true")
        options.setdefault("inferSchema", "true")
    try:
        return reader.options(**options).load(spec.path)
    except Exception as exc:
        from healer.runner import nanos

        if spec.format != "parquet" or not nanos.is_nanos_error(exc):
            raise
        # pandas writes nanosecond timestamps, which Spark refuses: read them to the microsecond
        return nanos.read_nanos(spark, reader.options(**options), spec.path, f"input '{spec.name}'")


def write_frame(df, path: str, fmt: str, options=None, partition_by=()) -> None:
    """Write a DataFrame to a fresh path (the path must not exist)."""
    writer = df.write.format(fmt).mode("errorifexists").options(**dict(options or {}))
    if fmt == "csv":
        writer = writer.option("header", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def hadoop_fs(spark, path: str):
    """(Hadoop FileSystem, Hadoop Path, JVM view) for a path, through Spark's JVM."""
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath, jvm


def path_exists(spark, path: str) -> bool:
    fs, jpath, _ = hadoop_fs(spark, path)
    return bool(fs.exists(jpath))


def delete_path(spark, path: str) -> None:
    fs, jpath, _ = hadoop_fs(spark, path)
    if fs.exists(jpath):
        fs.delete(jpath, True)


def rename_path(spark, src: str, dst: str) -> None:
    fs, jsrc, jvm = hadoop_fs(spark, src)
    if not fs.rename(jsrc, jvm.org.apache.hadoop.fs.Path(dst)):
        raise OSError(f"could not rename {src} to {dst}")


def staging_path(output: OutputSpec, run_key: str) -> str:
    """A sibling of the output path, so the publish is a rename on the same filesystem."""
    base = output.path.rstrip("/")
    parent, _, name = base.rpartition("/")
    return f"{parent}/.{name}.healer-staging-{run_key}" if parent else f".{name}.healer-staging-{run_key}"


def publish_path(spark, staged: str, output: OutputSpec, run_key: str) -> None:
    """Swap the staged result into place: the old output survives until the new one is in.

    The previous output is renamed aside, the staged result renamed in, then the old copy
    removed. If the second rename fails the old output is put back.
    """
    target = output.path.rstrip("/")
    backup = f"{staging_path(output, run_key)}-previous"
    had_previous = path_exists(spark, target)
    if had_previous:
        rename_path(spark, target, backup)
    else:
        fs, jpath, _ = hadoop_fs(spark, target)
        fs.mkdirs(jpath.getParent())
    try:
        rename_path(spark, staged, target)
    except Exception:
        if had_previous:
            rename_path(spark, backup, target)
        raise
    if had_previous:
        delete_path(spark, backup)


def publish_table(spark, staged_table: str, output: OutputSpec, run_key: str) -> None:
    """Swap a staged catalog table into place with renames, restoring the old one on failure."""
    backup = f"{output.table}__healer_previous_{run_key}"
    had_previous = spark.catalog.tableExists(output.table)
    if had_previous:
        spark.sql(f"ALTER TABLE {output.table} RENAME TO {backup}")
    try:
        spark.sql(f"ALTER TABLE {staged_table} RENAME TO {output.table}")
    except Exception:
        if had_previous:
            spark.sql(f"ALTER TABLE {backup} RENAME TO {output.table}")
        raise
    if had_previous:
        spark.sql(f"DROP TABLE IF EXISTS {backup}")


def listing(spark, path: str) -> list[tuple[str, int, int]]:
    """(file, size, modification time) of every file under a path: a fingerprint of its state."""
    if not path_exists(spark, path):
        return []
    fs, jpath, _ = hadoop_fs(spark, path)
    out = []
    files = fs.listFiles(jpath, True)
    while files.hasNext():
        status = files.next()
        out.append((status.getPath().toString(), status.getLen(), status.getModificationTime()))
    return sorted(out)
