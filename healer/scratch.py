"""Scratch: where a heal writes what Spark reads back — sampled inputs, sandbox and shadow outputs.

``HEALER_SCRATCH_URI`` is any Hadoop-FS URI (``file:///shared/healer``, ``hdfs://nn/healer``,
``s3a://bucket/healer``); unset, it is the local temp directory, which only a local Spark
(``local[*]``) can use: a cluster's executors run on other machines and cannot read the
driver's ``/tmp``. A heal whose Spark master is a cluster and whose scratch is unset or a
plain local path stops with one line saying so, before it writes anything.

Every heal writes under its own directory, ``<scratch>/healer-heal-<ledger>-<heal id>``, and
removes it when it ends. A heal that died leaves it behind; its lease expires, and the sweep
(``healer sweep``, the healer DAG, every heal's start) removes every such directory of this
ledger whose heal holds no lease any more.

Candidates run in a local worker under bubblewrap, which binds local directories only. With
``file:`` scratch (a mount every machine shares) both sides use the same directory. With a
remote store the heal keeps a local mirror (``Area.local``): samples are copied down to it
for the worker, and the worker's output is copied up for Spark to judge it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from healer.errors import ConfigError

log = logging.getLogger(__name__)

PREFIX = "healer-heal-"
SHARED_HINT = "set HEALER_SCRATCH_URI to storage every executor can read and write (file:///shared/..., hdfs://..., s3a://...)"


def is_local_master(master: str | None) -> bool:
    """True for a Spark master in this process (``local``, ``local[*]``, ``local-cluster`` is not)."""
    return not master or master == "local" or master.startswith("local[")


def configured_uri() -> str | None:
    """``HEALER_SCRATCH_URI`` as set, or None."""
    from healer.settings import Settings

    return Settings.from_env().scratch_uri


def base_uri(master: str | None, configured: str | None = None) -> str:
    """The scratch base for a Spark ``master``: a URI (``file:`` for local paths), or ConfigError.

    ``configured`` defaults to ``HEALER_SCRATCH_URI``. A cluster master needs a URI: unset or a
    plain path is refused (a path names the driver's own disk; ``file:///...`` says it is a
    mount every machine shares).
    """
    raw = configured if configured is not None else configured_uri()
    if not raw:
        if not is_local_master(master):
            raise ConfigError(f"HEALER_SPARK_MASTER={master} is a cluster, but HEALER_SCRATCH_URI is unset, so samples "
                              f"and sandbox outputs would go to the driver's local temp; {SHARED_HINT}")
        return Path(tempfile.gettempdir()).resolve().as_uri()
    scheme = urlparse(raw).scheme
    if not scheme:
        if not is_local_master(master):
            raise ConfigError(f"HEALER_SCRATCH_URI={raw} is a local path, which the executors of HEALER_SPARK_MASTER="
                              f"{master} cannot see; {SHARED_HINT}")
        return Path(raw).expanduser().resolve().as_uri()
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) or scheme == "file" and not urlparse(raw).path.startswith("/"):
        raise ConfigError(f"HEALER_SCRATCH_URI={raw}: expected a Hadoop-FS URI such as file:///shared/healer, "
                          "hdfs://namenode/healer or s3a://bucket/healer")
    return raw.rstrip("/")


def check_configured() -> None:
    """ConfigError now when ``HEALER_SPARK_MASTER`` is a cluster and the scratch is not shared.

    A heal calls it before it clones the repo or waits for Spark; ``heal_area`` checks the
    session's actual master again (standard Spark configuration may name a cluster too).
    """
    from healer.settings import Settings

    master = Settings.from_env().spark_master
    if master:
        base_uri(master)


def ledger_key(ledger_url: str) -> str:
    """A short key of the ledger: two ledgers sharing one scratch never sweep each other's heals."""
    return hashlib.sha256(ledger_url.encode()).hexdigest()[:8]


def heal_dir_name(ledger_url: str, heal_id: int) -> str:
    return f"{PREFIX}{ledger_key(ledger_url)}-{int(heal_id)}"


def _local_of(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else None


@dataclass(frozen=True)
class Area:
    """One heal's scratch directory as both sides see it.

    ``local``: the directory the healer and its sandbox workers use; ``uri``: the same place
    for Spark. They are one directory for ``file:`` scratch; for a remote store ``local`` is a
    mirror in the local temp dir and ``pull``/``push`` copy between them.
    """

    local: Path
    uri: str

    @property
    def mirrored(self) -> bool:
        return _local_of(self.uri) != self.local

    def spark_path(self, local: Path) -> str:
        """What Spark reads or writes for ``local`` (a path inside ``self.local``; others pass through)."""
        try:
            rel = Path(local).relative_to(self.local)
        except ValueError:
            return str(local)
        # a URI even for file: scratch: a bare path would mean the cluster's default FS (often HDFS)
        return f"{self.uri}/{rel.as_posix()}" if str(rel) != "." else self.uri

    def pull(self, spark, local: Path) -> None:
        """Copy what Spark wrote at ``spark_path(local)`` down to ``local`` (remote scratch only)."""
        if self.mirrored:
            fs, src, jvm = _fs(spark, self.spark_path(local))
            shutil.rmtree(local, ignore_errors=True)
            fs.copyToLocalFile(False, src, jvm.org.apache.hadoop.fs.Path(str(local)), True)

    def push(self, spark, local: Path) -> None:
        """Copy ``local`` (a worker's output) up to ``spark_path(local)`` (remote scratch only)."""
        if self.mirrored:
            fs, dst, jvm = _fs(spark, self.spark_path(local))
            fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(str(local)), dst)

    def remove(self, spark=None) -> None:
        """Remove the whole area, both sides; never raises (a leftover is the sweep's)."""
        shutil.rmtree(self.local, ignore_errors=True)
        if self.mirrored and spark is not None:
            try:
                from healer.runner import io

                io.delete_path(spark, self.uri)
            except Exception:  # noqa: BLE001 -- the sweep removes it later
                log.warning("could not remove the heal's scratch %s", self.uri, exc_info=True)


def _fs(spark, uri: str):
    from healer.runner import io

    return io.hadoop_fs(spark, uri)


def heal_area(spark, ledger_url: str, heal_id: int) -> Area:
    """Create this heal's scratch directory (ConfigError when the master is a cluster and scratch is not shared)."""
    master = spark.sparkContext.master
    base = base_uri(master)
    name = heal_dir_name(ledger_url, heal_id)
    uri = f"{base}/{name}"
    local = _local_of(uri)
    if local is None:
        local = Path(tempfile.mkdtemp(prefix=f"{name}-mirror-"))
        from healer.runner import io

        fs, path, _ = io.hadoop_fs(spark, uri)
        fs.mkdirs(path)
    else:
        local.mkdir(parents=True, exist_ok=True)
    log.debug("heal #%s scratch: %s (local %s)", heal_id, uri, local)
    return Area(local, uri)


def sweep(ledger, spark=None) -> list[str]:
    """Remove the scratch directories of this ledger's heals that hold no lease; return what was removed.

    Looks in the configured scratch (remote stores only with ``spark``) and in the local temp
    dir (default scratch, and the local mirrors of remote scratch). Call it after
    ``ledger.abandon_expired()``: a dead heal's lease must be gone first.
    """
    pattern = re.compile(re.escape(PREFIX + ledger_key(ledger.url)) + r"-(\d+)(?:-mirror-.*)?$")
    found: list[tuple[int, str]] = []
    bases = [Path(tempfile.gettempdir()).resolve().as_uri()]
    configured = configured_uri()
    if configured:
        try:
            bases.append(base_uri("local[*]", configured))
        except ConfigError:
            log.warning("sweep: HEALER_SCRATCH_URI=%s is not a URI; not swept", configured)
    for base in dict.fromkeys(bases):
        found += [(int(m.group(1)), where) for name, where in _listing(base, spark) if (m := pattern.match(name))]
    if not found:
        return []
    held = {lease.heal_id for lease in ledger.leases()}
    removed = []
    for heal_id, where in found:
        if heal_id in held:
            continue
        local = _local_of(where)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
        else:
            from healer.runner import io

            io.delete_path(spark, where)
        removed.append(where)
        log.warning("sweep: removed the scratch of heal #%s, which holds no lease: %s", heal_id, where)
    return removed


def _listing(base: str, spark) -> list[tuple[str, str]]:
    """(name, URI) of every entry directly under ``base``; remote stores only with a Spark session."""
    local = _local_of(base)
    if local is not None:
        try:
            return [(p.name, p.as_uri()) for p in local.iterdir() if p.name.startswith(PREFIX)]
        except OSError:
            return []
    if spark is None:
        log.info("sweep: %s is not swept without a Spark session", base)
        return []
    from healer.runner import io

    fs, path, _ = io.hadoop_fs(spark, base)
    if not fs.exists(path):
        return []
    return [(s.getPath().getName(), s.getPath().toString()) for s in fs.listStatus(path)
            if s.getPath().getName().startswith(PREFIX)]
