"""What an input's location actually holds when it no longer reads as healer.yml declares it.

An upstream team switches a feed from Parquet to CSV, compresses it, writes JSON lines, nests
it one folder deeper, or leaves a single file where a folder was. Spark then fails with a
Java or Python traceback; here the location is listed and the first bytes of its data
files are read, so the evidence says what is there and a rule can propose the manifest
change when it is unambiguous.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
import zlib
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)

MAX_FILES = 2000  # listed per input
SNIFF_FILES = 8  # data files whose first bytes are read
HEAD_BYTES = 4096

# what a file's first bytes say (gzip is opened and sniffed again)
MAGIC = ((b"PAR1", "parquet"), (b"ORC", "orc"), (b"Obj\x01", "avro"))
SIDE_FILES = ("_SUCCESS", "_committed_", "_started_", ".crc", "_metadata", "_common_metadata")


@dataclass(frozen=True)
class Sniffed:
    """An unreadable input: what was declared, what failed, what the location holds."""

    location: str
    declared: str  # the declared format
    error: str  # the first line of the read error
    exists: bool = True
    files: int = 0
    formats: dict = field(default_factory=dict)  # sniffed format -> data files
    compression: dict = field(default_factory=dict)  # gzip/... -> files
    extensions: dict = field(default_factory=dict)  # extension -> files
    layout: str = ""  # flat | partitioned (k=v folders) | nested (data one folder deeper) | single file | empty | delta
    partition_keys: tuple[str, ...] = ()
    nested_dir: str | None = None  # the one subfolder holding every data file, when layout is nested
    delimiter: str | None = None  # for text that looks like CSV
    header: bool | None = None
    note: str = ""

    @property
    def format(self) -> str | None:
        """The one format every sniffed data file has, or None (none, or a mix)."""
        return next(iter(self.formats)) if len(self.formats) == 1 else None

    def describe(self) -> str:
        if not self.exists:
            return f"{self.location} does not exist"
        if not self.files:
            return f"{self.location} holds no data files" + (f" ({self.note})" if self.note else "")
        found = ", ".join(f"{n} {f}" for f, n in sorted(self.formats.items())) or "unrecognised content"
        extra = [f"compressed {', '.join(self.compression)}" if self.compression else "",
                 f"layout {self.layout}" + (f" by {', '.join(self.partition_keys)}" if self.partition_keys else "")
                 + (f" under {self.nested_dir}/" if self.nested_dir else ""),
                 f"delimiter {self.delimiter!r}" if self.delimiter else "", self.note]
        return (f"declared {self.declared}, found {self.files} data file(s): {found}; "
                + "; ".join(x for x in extra if x))

    def to_json(self) -> dict:
        data = asdict(self)
        data["format"] = self.format
        data["partition_keys"] = list(self.partition_keys)
        return data


def sniff(spark, spec, exc: BaseException) -> Sniffed:
    """List ``spec``'s location and sniff its data files (Hadoop FS: local disk, HDFS, object stores)."""
    from healer.runner import io

    error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    declared = spec.format or "table"
    if spec.table is not None:
        return Sniffed(location=spec.table, declared="table", error=error,
                       note="a catalog table: its files are not sniffed")
    if not io.path_exists(spark, spec.path):
        return Sniffed(location=spec.path, declared=declared, error=error, exists=False)
    fs, root, _ = io.hadoop_fs(spark, spec.path)
    root_str = fs.getFileStatus(root).getPath().toString().rstrip("/")
    if fs.getFileStatus(root).isFile():
        rel = [("", root_str.rsplit("/", 1)[-1], root_str)]
        layout = "single file"
    else:
        rel, layout = [], ""
        it = fs.listFiles(root, True)
        while it.hasNext() and len(rel) < MAX_FILES:
            st = it.next()
            full = st.getPath().toString()
            sub = full[len(root_str):].lstrip("/")
            folder, _, name = sub.rpartition("/")
            rel.append((folder, name, full))
    if any(folder.split("/")[0] == "_delta_log" for folder, _, _ in rel):
        return Sniffed(location=spec.path, declared=declared, error=error, files=len(rel), formats={"delta": 1},
                       layout="delta")
    data = [(folder, name, full) for folder, name, full in rel if not _side_file(name)]
    if not data:
        return Sniffed(location=spec.path, declared=declared, error=error, files=0, layout="empty",
                       note=f"{len(rel)} side file(s) only" if rel else "")
    folders = {folder for folder, _, _ in data}
    keys: tuple[str, ...] = ()
    nested = None
    if not layout:
        parts = [f.split("/") for f in folders if f]
        if folders == {""}:
            layout = "flat"
        elif parts and all(all("=" in p for p in ps) for ps in parts):
            layout = "partitioned"
            keys = tuple(p.split("=", 1)[0] for p in sorted(parts, key=len)[-1])
        elif len(folders) == 1:
            layout, nested = "nested", next(iter(folders))
        else:
            layout = "mixed folders"
    formats, compression, extensions = Counter(), Counter(), Counter()
    delimiter = header = None
    for folder, name, full in data[:SNIFF_FILES]:
        head = _head(fs, full, spark)
        kind, comp, text = _kind(head)
        formats[kind] += 1
        if comp:
            compression[comp] += 1
        if kind == "csv" and text is not None and delimiter is None:
            delimiter, header = _csv_shape(text)
    for _, name, _ in data:
        extensions[_extension(name)] += 1
    # every data file was listed; the sniffed few stand for the rest when their extensions agree
    return Sniffed(location=spec.path, declared=declared, error=error, files=len(data), formats=dict(formats),
                   compression=dict(compression), extensions=dict(extensions), layout=layout, partition_keys=keys,
                   nested_dir=nested, delimiter=delimiter, header=header,
                   note="" if len(extensions) <= 1 else "data files have mixed extensions")


def _side_file(name: str) -> bool:
    return name.startswith((".", "_")) or any(name.endswith(s) or name.startswith(s) for s in SIDE_FILES)


def _extension(name: str) -> str:
    parts = name.lower().split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 and parts[-1] in ("gz", "bz2", "snappy", "zst", "lz4") else (
        parts[-1] if len(parts) > 1 else "")


def _head(fs, path: str, spark) -> bytes:
    jvm = spark.sparkContext._jvm
    stream = fs.open(jvm.org.apache.hadoop.fs.Path(path))
    try:
        buf = bytearray()
        while len(buf) < HEAD_BYTES:
            b = stream.read()
            if b < 0:
                break
            buf.append(b)
        return bytes(buf)
    finally:
        stream.close()


def _kind(head: bytes) -> tuple[str, str | None, str | None]:
    """(format, compression, decoded text) from a file's first bytes."""
    comp = None
    if head[:2] == b"\x1f\x8b":
        comp = "gzip"
        try:  # the first bytes only: a decompressor object does not need the stream's end
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, HEAD_BYTES)
        except zlib.error:
            return "unknown", comp, None
    elif head[:3] == b"BZh":
        return "unknown", "bzip2", None
    elif head[:4] == b"\x28\xb5\x2f\xfd":
        return "unknown", "zstd", None
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name, comp, None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head[:-4].decode("utf-8", errors="strict") if _utf8_cut(head) else None
    if text is None:
        return "binary", comp, None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        first = stripped.splitlines()[0]
        try:
            json.loads(first)
            return "json", comp, text
        except ValueError:
            return "json", comp, text  # a JSON document over several lines
    return "csv", comp, text


def _utf8_cut(head: bytes) -> bool:
    try:
        head[:-4].decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _csv_shape(text: str) -> tuple[str | None, bool | None]:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) < 1:
        return None, None
    best = None
    for d in (",", ";", "\t", "|"):
        counts = {line.count(d) for line in lines[:-1] or lines}
        if len(counts) == 1 and next(iter(counts)) > 0:
            best = best or d
    if best is None:
        return None, None
    first = lines[0].split(best)
    header = all(c.strip().strip('"') and not _number(c) for c in first)
    return best, header


def _number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
        return True
    except ValueError:
        return False
