"""The ledger: every run, heal, candidate and pull request, in SQLite or any SQLAlchemy URL.

The runner writes a run record on every run (success or failure) with the input schemas
and the output profile; the healer diffs a failure against the last good run's record.
SQLite runs in WAL mode with a busy timeout so two processes can write at once.

One heal per root cause at a time, across processes and machines: a heal starts by taking
the lease of its failure's fingerprint (``take_lease``), renews it while it runs and drops it
when it ends. A heal killed or crashed stops renewing; once its lease expires the next heal
of that cause takes the lease over, or ``abandon_expired`` (the healer DAG's sweep, ``healer
sweep``) releases it, and either marks the dead heal ``abandoned``. Expiry compares clocks of
different machines: they are assumed in sync to well within the lease (NTP), minutes here.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from healer import config
from healer.errors import LedgerError
from healer.settings import Settings

log = logging.getLogger(__name__)

metadata = sa.MetaData()

# What a heal ended with (heals.status); `running` until it does.
# a heal is running until it ends in one of the others (abandoned: stopped by a signal, or its lease ran out)
HealStatus = Literal["running", "proposed", "declined", "skipped", "error", "abandoned"]
HEAL_STATUSES: tuple[str, ...] = get_args(HealStatus)
FINAL_STATUSES = ("proposed", "declined", "skipped", "error")  # ended with a result (abandoned did not)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A datetime with its zone: a naive one was written in UTC (SQLite keeps no zone)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them without a zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        return as_utc(value)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("repo", sa.Text, nullable=False),
    sa.Column("commit", sa.String(64)),
    sa.Column("dirty", sa.Boolean, default=False),
    sa.Column("status", sa.String(20), nullable=False),  # running | success | failed
    sa.Column("stage", sa.String(20)),  # config | input | job | audit | publish
    sa.Column("error_class", sa.String(200)),  # Spark error condition, or the exception type
    sa.Column("error_params", sa.JSON),
    sa.Column("error_message", sa.Text),
    sa.Column("traceback", sa.Text),
    sa.Column("failed_expectations", sa.JSON),
    sa.Column("input_schemas", sa.JSON),  # name -> Spark schema JSON
    sa.Column("input_profiles", sa.JSON),  # name -> profile of a bounded sample
    sa.Column("input_locations", sa.JSON),  # name -> path or table
    sa.Column("output_schema", sa.JSON),
    sa.Column("output_profile", sa.JSON),
    sa.Column("output_location", sa.Text),
    sa.Column("row_count", sa.BigInteger),
    sa.Column("context", sa.JSON),  # who ran it: cli, airflow ids and try number, sandbox
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("duration_s", sa.Float),
)

heals = sa.Table(
    "heals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, index=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("repo", sa.Text),
    sa.Column("fingerprint", sa.String(64), index=True),
    sa.Column("category", sa.String(50)),
    # running | proposed | declined | skipped | error | abandoned (killed, crashed or stopped by a signal)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("fixer", sa.String(100)),
    sa.Column("branch", sa.String(300)),
    sa.Column("pr_id", sa.Integer),
    sa.Column("outcome", sa.JSON),  # the whole outcome as `healer heal --json` prints it
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
)

candidates = sa.Table(
    "candidates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("heal_id", sa.Integer, index=True, nullable=False),
    sa.Column("fixer", sa.String(100)),
    sa.Column("title", sa.Text),
    sa.Column("confidence", sa.Float),
    sa.Column("patch", sa.JSON),
    sa.Column("verdict", sa.JSON),
    sa.Column("passed", sa.Boolean),
)

prs = sa.Table(
    "prs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("forge", sa.String(20), nullable=False),  # local | github | gitlab
    sa.Column("number", sa.String(50)),  # the forge's own id, when it has one
    sa.Column("url", sa.Text),
    sa.Column("heal_id", sa.Integer),
    sa.Column("pipeline", sa.String(200)),
    sa.Column("fingerprint", sa.String(64), index=True),
    sa.Column("remote", sa.Text),
    sa.Column("branch", sa.String(300)),
    sa.Column("base", sa.String(300)),
    sa.Column("title", sa.Text),
    sa.Column("body", sa.Text),
    sa.Column("draft", sa.Boolean, default=False),
    sa.Column("status", sa.String(20), nullable=False),  # open | merged | closed
    sa.Column("created_at", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime()),
)


leases = sa.Table(
    "heal_leases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # one row per root cause: inserting it is taking the lease, the unique key makes that atomic
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("heal_id", sa.Integer, nullable=False),  # the heal holding it
    sa.Column("holder", sa.String(300), nullable=False),  # host:pid of that heal
    sa.Column("acquired_at", UTCDateTime()),
    sa.Column("renewed_at", UTCDateTime()),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)


@dataclass
class RunRecord:
    """One pipeline run as stored in the ledger."""

    pipeline: str
    repo: str
    status: str = "running"
    id: int | None = None
    commit: str | None = None
    dirty: bool = False
    stage: str | None = None
    error_class: str | None = None
    error_params: dict | None = None
    error_message: str | None = None
    traceback: str | None = None
    failed_expectations: list | None = None
    input_schemas: dict = field(default_factory=dict)
    input_profiles: dict = field(default_factory=dict)
    input_locations: dict = field(default_factory=dict)
    output_schema: dict | None = None
    output_profile: dict | None = None
    output_location: str | None = None
    row_count: int | None = None
    context: dict = field(default_factory=dict)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def one_line(self) -> str:
        if self.ok:
            return f"run {self.id}: {self.pipeline} succeeded: {self.row_count} rows -> {self.output_location}"
        return f"run {self.id}: {self.pipeline} failed at {self.stage}: {self.error_message}"


_RUN_FIELDS = [f.name for f in fields(RunRecord)]


class Ledger:
    """Access to the ledger database. Cheap to create; tables are created on first use."""

    def __init__(self, url: str | None = None):
        self.url = url or config.ledger_url()
        try:
            self.engine = _engine(self.url)
            _create_tables(self.engine)
        except (SQLAlchemyError, ImportError) as exc:
            raise LedgerError(f"ledger {self.url}: cannot open: {str(exc).splitlines()[0]}") from None

    # -- runs ---------------------------------------------------------------------------
    def start_run(self, record: RunRecord) -> RunRecord:
        """Insert a run in state 'running' and set its id."""
        values = _stored({k: getattr(record, k) for k in _RUN_FIELDS if k != "id"})
        with self._begin() as conn:
            record.id = conn.execute(runs.insert().values(**values)).inserted_primary_key[0]
        return record

    def finish_run(self, record: RunRecord) -> RunRecord:
        """Store the final state of a run started with start_run."""
        values = _stored({k: getattr(record, k) for k in _RUN_FIELDS if k != "id"})
        with self._begin() as conn:
            conn.execute(runs.update().where(runs.c.id == record.id).values(**values))
        return record

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        return _run(row) if row else None

    def runs(self, pipeline: str | None = None, status: str | None = None, limit: int = 50, repo: str | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        q = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if pipeline:
            q = q.where(runs.c.pipeline == pipeline)
        if status:
            q = q.where(runs.c.status == status)
        if repo:
            q = q.where(runs.c.repo == repo)
        with self._connect() as conn:
            return [_run(r) for r in conn.execute(q).mappings()]

    def last_success(self, pipeline: str, before_id: int | None = None, repo: str | None = None) -> RunRecord | None:
        """The newest successful run of a pipeline (before a given run, when given)."""
        q = sa.select(runs).where(runs.c.pipeline == pipeline, runs.c.status == "success")
        if before_id is not None:
            q = q.where(runs.c.id < before_id)
        if repo:
            q = q.where(runs.c.repo == repo)
        with self._connect() as conn:
            row = conn.execute(q.order_by(runs.c.id.desc()).limit(1)).mappings().first()
        return _run(row) if row else None

    def last_failure(self, pipeline: str, repo: str | None = None) -> RunRecord | None:
        """The newest failed run of a pipeline."""
        found = self.runs(pipeline=pipeline, status="failed", limit=1, repo=repo)
        return found[0] if found else None

    # -- heals, candidates, pull requests -----------------------------------------------
    def insert(self, table: sa.Table, **values) -> int:
        """Insert a row into one of the heal tables and return its id."""
        with self._begin() as conn:
            return conn.execute(table.insert().values(**values)).inserted_primary_key[0]

    def update(self, table: sa.Table, row_id: int, **values) -> None:
        with self._begin() as conn:
            conn.execute(table.update().where(table.c.id == row_id).values(**values))

    def get(self, table: sa.Table, row_id: int) -> dict | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == row_id)).mappings().first()
        return dict(row) if row else None

    def select(self, table: sa.Table, *where, order_desc: bool = True, limit: int = 100) -> list[dict]:
        q = sa.select(table).where(*where).limit(limit)
        q = q.order_by(table.c.id.desc() if order_desc else table.c.id)
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def count(self, table: sa.Table, *where) -> int:
        """How many rows of ``table`` match: counted by the database, not fetched."""
        with self._connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()

    def distinct(self, column: sa.Column, *where) -> list:
        """The distinct non-NULL values of one column among the rows that match."""
        q = sa.select(column).where(column.is_not(None), *where).distinct()
        with self._connect() as conn:
            return list(conn.execute(q).scalars())

    def open_pr_for(self, fingerprint: str) -> dict | None:
        """The open pull request already proposed for a failure fingerprint, if any."""
        found = self.select(prs, prs.c.fingerprint == fingerprint, prs.c.status == "open", limit=1)
        if found:
            return found[0]
        # a storm PR carries its group's fingerprint; its members point at it from their heals
        member = sa.select(heals.c.pr_id).where(heals.c.fingerprint == fingerprint, heals.c.pr_id.is_not(None))
        found = self.select(prs, prs.c.id.in_(member), prs.c.status == "open", limit=1)
        return found[0] if found else None

    # -- leases: one heal per root cause ---------------------------------------------------
    def take_lease(self, fingerprint: str, heal: dict, seconds: float | None = None) -> "Lease | LeaseRow":
        """Start a heal of a root cause: its ``running`` heals row and the cause's lease, in one transaction.

        ``heal`` holds the row's values (run_id, pipeline, repo, category ...). Returns the held
        Lease, whose ``heal_id`` is the new row; or, when a live heal holds the lease, that
        heal's LeaseRow and no row is written. A lease past its expiry is taken over, and the
        heal that let it expire is marked ``abandoned`` in the same transaction.
        """
        seconds = lease_seconds() if seconds is None else seconds
        holder = holder_name()
        for _ in range(20):  # the holder may release or renew between our steps: look again
            now = utcnow()
            row = dict(heal, fingerprint=fingerprint, status="running", started_at=heal.get("started_at") or now)
            lease = dict(holder=holder, acquired_at=now, renewed_at=now, expires_at=now + dt.timedelta(seconds=seconds))
            try:
                with self._begin() as conn:
                    heal_id = conn.execute(heals.insert().values(**row)).inserted_primary_key[0]
                    conn.execute(leases.insert().values(fingerprint=fingerprint, heal_id=heal_id, **lease))
                return Lease(self, fingerprint, heal_id, holder, seconds)
            except IntegrityError:
                pass  # the cause's lease exists: held by a live heal, or left by a dead one
            current = self.lease(fingerprint)
            if current is None:
                continue
            if current.expires_at > now:
                return current
            try:
                with self._begin() as conn:
                    # the write comes first: on SQLite it takes the write lock before anything is read
                    heal_id = conn.execute(heals.insert().values(**row)).inserted_primary_key[0]
                    taken = conn.execute(leases.update().where(
                        leases.c.fingerprint == fingerprint, leases.c.heal_id == current.heal_id,
                        leases.c.expires_at < now).values(heal_id=heal_id, **lease)).rowcount
                    if not taken:
                        raise _Contended  # renewed, released or taken over meanwhile: undo the heals row
                    conn.execute(heals.update().where(heals.c.id == current.heal_id, heals.c.status == "running")
                                 .values(status="abandoned", finished_at=now,
                                         reason=_abandoned_reason(current, f"heal #{heal_id} took the cause over")))
            except _Contended:
                continue
            log.warning("heal #%s took over the lease of cause %s from heal #%s (%s), whose lease expired at %s",
                        heal_id, fingerprint[:12], current.heal_id, current.holder, current.expires_at)
            return Lease(self, fingerprint, heal_id, holder, seconds, took_over=current)
        raise LedgerError(f"ledger {self.url}: the lease of cause {fingerprint[:12]} changed hands 20 times "
                          "while this heal tried to take it")

    def lease(self, fingerprint: str) -> "LeaseRow | None":
        """Who holds the lease of a root cause, if anyone (it may have expired)."""
        with self._connect() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.fingerprint == fingerprint)).mappings().first()
        return _lease_row(row) if row else None

    def leases(self) -> list["LeaseRow"]:
        """Every lease held now (or expired and not yet swept), oldest first."""
        with self._connect() as conn:
            return [_lease_row(r) for r in conn.execute(sa.select(leases).order_by(leases.c.id)).mappings()]

    def abandon_expired(self, now: dt.datetime | None = None) -> list["Abandoned"]:
        """The sweep: heals whose lease expired (killed or crashed) are marked ``abandoned``, their leases dropped.

        Also heals left ``running`` with no lease at all for longer than a lease lasts (recorded
        before leases existed, or whose lease was taken over or swept already). Safe to run from
        any number of processes at once: every change is conditional on what was read.
        """
        now = now or utcnow()
        found: list[Abandoned] = []
        for row in self.select(leases, leases.c.expires_at < now, order_desc=False, limit=1000):
            expired = _lease_row(row)
            with self._begin() as conn:
                dropped = conn.execute(leases.delete().where(leases.c.id == row["id"], leases.c.heal_id == expired.heal_id,
                                                             leases.c.expires_at < now)).rowcount
                reason = _abandoned_reason(expired, "the sweep released it")
                marked = dropped and conn.execute(heals.update().where(heals.c.id == expired.heal_id,
                                                                       heals.c.status == "running")
                                                  .values(status="abandoned", reason=reason, finished_at=now)).rowcount
                run_id = conn.execute(sa.select(heals.c.run_id).where(heals.c.id == expired.heal_id)).scalar()
            if marked:
                found.append(Abandoned(expired.heal_id, run_id, expired.fingerprint, expired.holder, reason))
        leased = sa.select(leases.c.heal_id)
        stale = now - dt.timedelta(seconds=lease_seconds())
        reason = "the heal stopped without a result and holds no lease (its process was killed or crashed)"
        for row in self.select(heals, heals.c.status == "running", heals.c.started_at < stale,
                               heals.c.id.not_in(leased), order_desc=False, limit=1000):
            with self._begin() as conn:
                marked = conn.execute(heals.update().where(heals.c.id == row["id"], heals.c.status == "running",
                                                           heals.c.id.not_in(leased))
                                      .values(status="abandoned", reason=reason, finished_at=now)).rowcount
            if marked:
                found.append(Abandoned(row["id"], row["run_id"], row["fingerprint"] or "", None, reason))
        for a in found:
            log.warning("heal #%s abandoned: %s", a.heal_id, a.reason)
        if found:
            from healer.governance import trail  # the governance package reads the ledger: imported late

            trail.heals_abandoned(self, found)
        return found

    def ensure(self, table: sa.Table) -> None:
        """Create ``table`` if missing: a module's table defined after this ledger was opened (create_all
        ran without it). Once per ledger and table in a process; a race with another process is harmless."""
        key = (self.url, table.name)
        if key in _ensured:
            return
        try:
            table.create(self.engine, checkfirst=True)
        except SQLAlchemyError as exc:  # another process created it between the check and the create
            if "already exists" not in str(exc):
                raise LedgerError(f"ledger {self.url}: cannot create table {table.name}: "
                                  f"{str(exc).splitlines()[0]}") from None
        _ensured.add(key)

    # -- plumbing -----------------------------------------------------------------------
    def _connect(self):
        return _Guard(self, begin=False)

    def _begin(self):
        return _Guard(self, begin=True)


class _Guard:
    """A connection or transaction whose database errors become one-line LedgerErrors.

    SQLite answers 'database is locked' past its busy timeout under heavy contention;
    those writes are retried a few times before giving up.
    """

    def __init__(self, ledger: Ledger, begin: bool):
        self.ledger, self.begin = ledger, begin

    def __enter__(self):
        for attempt in range(5):
            try:
                self.ctx = self.ledger.engine.begin() if self.begin else self.ledger.engine.connect()
                return self.ctx.__enter__()
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == 4:
                    raise LedgerError(f"ledger {self.ledger.url}: {str(exc).splitlines()[0]}") from None
                time.sleep(0.2 * (attempt + 1))

    def __exit__(self, *exc_info):
        try:
            return self.ctx.__exit__(*exc_info)
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger {self.ledger.url}: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True)
class LeaseRow:
    """The lease of one root cause as stored: which heal holds it, from where, until when."""

    fingerprint: str
    heal_id: int
    holder: str
    acquired_at: dt.datetime | None
    renewed_at: dt.datetime | None
    expires_at: dt.datetime


@dataclass(frozen=True)
class Abandoned:
    """A heal the sweep marked ``abandoned``."""

    heal_id: int
    run_id: int | None  # the failed run it was healing
    fingerprint: str
    holder: str | None  # host:pid, when it held a lease
    reason: str


class _Contended(Exception):
    """The lease changed between reading and taking it over: roll back and look again."""


class Lease:
    """A held lease on one root cause: kept alive while the heal runs, released when it ends.

    ``keep_alive`` renews it from a daemon thread every third of its length, so a heal blocked
    in a long Spark job or model call keeps it; a killed process stops renewing and loses it
    after at most one length. ``check`` renews it on the spot and raises when it was lost.
    """

    def __init__(self, ledger: Ledger, fingerprint: str, heal_id: int, holder: str, seconds: float,
                 took_over: LeaseRow | None = None):
        self.ledger, self.fingerprint, self.heal_id = ledger, fingerprint, heal_id
        self.holder, self.seconds, self.took_over = holder, seconds, took_over
        self.lost = False
        self._stop = threading.Event()

    def renew(self) -> bool:
        """Push the expiry one length ahead; False (and ``lost``) when the lease is no longer this heal's."""
        now = utcnow()
        with self.ledger._begin() as conn:
            renewed = conn.execute(leases.update()
                                   .where(leases.c.fingerprint == self.fingerprint, leases.c.heal_id == self.heal_id)
                                   .values(renewed_at=now, expires_at=now + dt.timedelta(seconds=self.seconds))).rowcount
        if not renewed:
            self.lost = True
        return bool(renewed)

    def check(self) -> None:
        """Raise LedgerError unless this heal still holds the lease (renewing it).

        A heal that stalled past its expiry may have been replaced; it must not push or open
        a pull request over its successor's.
        """
        if self.lost or not self.renew():
            raise LedgerError(f"heal #{self.heal_id} lost the lease of its cause {self.fingerprint[:12]}: it expired "
                              "unrenewed and another heal or the sweep took it; stopping before the proposal")

    def keep_alive(self) -> "Lease":
        """Renew in a daemon thread until ``release``."""
        interval = self.seconds / 3

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        log.warning("heal #%s lost the lease of cause %s", self.heal_id, self.fingerprint[:12])
                        return
                except LedgerError as exc:  # the database may be back before the lease runs out
                    log.warning("heal #%s could not renew its lease (will retry): %s", self.heal_id, exc)

        threading.Thread(target=beat, name=f"healer-lease-{self.heal_id}", daemon=True).start()
        return self

    def release(self, discard: bool = False) -> None:
        """Drop the lease (after the heal's final state is written); ``discard`` also deletes the still
        ``running`` heals row, for a heal that turned out to have nothing to do."""
        self._stop.set()  # a renewal racing this delete updates no row: it cannot bring the lease back
        with self.ledger._begin() as conn:
            conn.execute(leases.delete().where(leases.c.fingerprint == self.fingerprint,
                                               leases.c.heal_id == self.heal_id))
            if discard:
                conn.execute(heals.delete().where(heals.c.id == self.heal_id, heals.c.status == "running"))


def _lease_row(row) -> LeaseRow:
    return LeaseRow(row["fingerprint"], row["heal_id"], row["holder"], row["acquired_at"], row["renewed_at"],
                    row["expires_at"])


def _abandoned_reason(lease: LeaseRow, then: str) -> str:
    return (f"its process ({lease.holder}) stopped renewing the lease of this cause, which expired at "
            f"{lease.expires_at:%Y-%m-%d %H:%M:%S} UTC (killed or crashed); {then}")


def holder_name() -> str:
    """Who holds a lease: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_seconds() -> float:
    """How long a heal's lease lasts unrenewed (``HEALER_LEASE_SECONDS``, default 180).

    A running heal renews it every third of that; a killed one is replaced after at most that.
    """
    return Settings.from_env().lease_seconds


def lease_wait_seconds() -> float:
    """How long a heal waits while another heal of its cause runs (``HEALER_LEASE_WAIT``, default 300).

    Longer than a lease by default, so that a dead holder is taken over within one wait.
    """
    return Settings.from_env().lease_wait


def _stored(values: dict) -> dict:
    """A run's values as stored: what it quotes from logs and data (the error, its parameters, the
    traceback, failed expectations' examples) redacted. Schemas and profiles are stored as made:
    later heals compare them with the data, and ``profile`` already leaves secret values out."""
    from healer.redact import redact, redact_json

    for key in ("error_message", "traceback"):
        values[key] = redact(values[key])
    for key in ("error_params", "failed_expectations"):
        values[key] = redact_json(values[key])
    return values


def _run(row) -> RunRecord:
    return RunRecord(**{k: row[k] for k in _RUN_FIELDS})


_engines: dict[str, sa.Engine] = {}
_ensured: set[tuple[str, str]] = set()  # (ledger url, table) created by Ledger.ensure in this process


def _engine(url: str) -> sa.Engine:
    if url in _engines:
        return _engines[url]
    if url.startswith("sqlite"):
        db = url.split("///", 1)[-1]
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = sa.create_engine(_driver_url(url), pool_pre_ping=True)
    _engines[url] = engine
    return engine


def _driver_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 when that is what is installed."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


# engine -> the tables already created through it: a Ledger() in a failing task's hand-off
# then costs no schema queries (create_all asks the database about every table each time)
_made: "weakref.WeakKeyDictionary[sa.Engine, frozenset[str]]" = weakref.WeakKeyDictionary()


def _create_tables(engine: sa.Engine) -> None:
    names = frozenset(metadata.tables)  # modules imported later add tables: those are created then
    if _made.get(engine) == names:
        return
    # Two processes may race to create the tables; the loser sees "already exists".
    for attempt in range(5):
        try:
            metadata.create_all(engine, checkfirst=True)
            _made[engine] = names
            return
        except OperationalError as exc:
            if "already exists" in str(exc) or "locked" in str(exc):
                time.sleep(0.1 * (attempt + 1))
                continue
            raise
    metadata.create_all(engine, checkfirst=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def jsonable(value: Any) -> Any:
    """Make Spark/Python values JSON-storable (dates, decimals, Rows)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    try:
        import decimal

        if isinstance(value, decimal.Decimal):
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    return str(value)
