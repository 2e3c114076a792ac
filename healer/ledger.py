"""The ledger: every run, heal, candidate and pull request, in SQLite or any SQLAlchemy URL.

The runner writes a run record on every run (success or failure) with the input schemas
and the output profile; the healer diffs a failure against the last good run's record.
SQLite runs in WAL mode with a busy timeout so two processes can write at once.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from healer import config
from healer.errors import LedgerError

metadata = sa.MetaData()


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
    sa.Column("status", sa.String(20), nullable=False),  # running | proposed | declined | skipped | error
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
        values = {k: getattr(record, k) for k in _RUN_FIELDS if k != "id"}
        with self._begin() as conn:
            record.id = conn.execute(runs.insert().values(**values)).inserted_primary_key[0]
        return record

    def finish_run(self, record: RunRecord) -> RunRecord:
        """Store the final state of a run started with start_run."""
        values = {k: getattr(record, k) for k in _RUN_FIELDS if k != "id"}
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

    def open_pr_for(self, fingerprint: str) -> dict | None:
        """The open pull request already proposed for a failure fingerprint, if any."""
        found = self.select(prs, prs.c.fingerprint == fingerprint, prs.c.status == "open", limit=1)
        if found:
            return found[0]
        # a storm PR carries its group's fingerprint; its members point at it from their heals
        member = sa.select(heals.c.pr_id).where(heals.c.fingerprint == fingerprint, heals.c.pr_id.is_not(None))
        found = self.select(prs, prs.c.id.in_(member), prs.c.status == "open", limit=1)
        return found[0] if found else None

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


def _run(row) -> RunRecord:
    return RunRecord(**{k: row[k] for k in _RUN_FIELDS})


_engines: dict[str, sa.Engine] = {}


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


def _create_tables(engine: sa.Engine) -> None:
    # Two processes may race to create the tables; the loser sees "already exists".
    for attempt in range(5):
        try:
            metadata.create_all(engine, checkfirst=True)
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
