"""Expectations files: a YAML list, one expectation a line, run with Great Expectations 1.x.

    - {expect: column_values_not_null, column: nation}
    - {expect: column_values_between, column: revenue, min: 0}
    - {expect: row_count_between, min: 1}

Each kind maps onto one GX expectation; unknown kinds or keys are a clear error naming
the file, the item and the key.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from healer.errors import ExpectationsError
from healer.manifest import read_yaml
from healer.redact import mask_if_secret


@dataclass(frozen=True)
class Expectation:
    """One line of an expectations file."""

    kind: str
    args: dict[str, Any]

    # the keys other modules read, named once here (the file's own key names stay as they are)
    @property
    def column(self) -> str | None:
        return self.args.get("column")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.args.get("columns") or ())

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.kind}({inner})"


@dataclass(frozen=True)
class ExpectationResult:
    """What one expectation found: pass/fail, counts and a few offending values.

    The one record of a result from the audit to every reader (triage, rules, evidence, the
    sandbox verdict, the PR body). ``to_json`` is the shape the ledger, the PR data and the
    model's evidence have always held; ``from_json`` reads that shape back.
    """

    expectation: str
    kind: str
    column: str | None
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    # a list like the stored JSON (readers compare it with lists); no reader changes it
    examples: list[Any] = field(default_factory=list)
    observed: Any = None  # JSON-friendly already (``_plain``): a count, a list of columns, ...
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ExpectationResult:
        """A stored result. Older or hand-written rows may hold only some keys (kind and column, say),
        and rows other writers put in the ledger may hold extra ones: missing keys take the defaults,
        extra keys are left out."""
        known = {f.name for f in fields(cls)} & set(data)
        values = {k: data[k] for k in known}
        values["examples"] = list(values.get("examples") or [])
        return cls(**{"expectation": "", "kind": "", "column": None, "success": False, **values})

    def summary(self) -> str:
        if self.success:
            return f"{self.expectation}: passed"
        if self.error:
            return f"{self.expectation}: could not run: {self.error}"
        if self.unexpected_count is not None:
            shown = ", ".join(repr(v) for v in self.examples[:5])
            return (
                f"{self.expectation}: {self.unexpected_count} of {self.element_count} rows failed"
                + (f" (e.g. {shown})" if shown else "")
            )
        return f"{self.expectation}: failed (observed {self.observed!r})"


@dataclass(frozen=True)
class AuditResult:
    """The verdict of a suite on one DataFrame."""

    success: bool
    results: list[ExpectationResult]

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]

    def summary(self) -> str:
        if self.success:
            return f"all {len(self.results)} expectations passed"
        return "; ".join(r.summary() for r in self.failed)

    def to_json(self) -> list[dict]:
        return [r.to_json() for r in self.results]


def _number(args: dict, key: str) -> None:
    value = args.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise TypeError(f"'{key}' must be a number")


def _bounds(args: dict) -> None:
    if args.get("min") is None and args.get("max") is None:
        raise TypeError("give 'min' and/or 'max'")
    _number(args, "min")
    _number(args, "max")
    if args.get("min") is not None and args.get("max") is not None and args["min"] > args["max"]:
        raise TypeError("'min' is greater than 'max'")


def _column(args: dict) -> None:
    if not isinstance(args["column"], str) or not args["column"]:
        raise TypeError("'column' must be a column name")


def _columns(args: dict) -> None:
    cols = args["columns"]
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        raise TypeError("'columns' must be a non-empty list of column names")


def _values(args: dict) -> None:
    if not isinstance(args["values"], list) or not args["values"]:
        raise TypeError("'values' must be a non-empty list")


def _regex(args: dict) -> None:
    import re

    try:
        re.compile(str(args["regex"]))
    except re.error as exc:
        raise TypeError(f"invalid regex: {exc}") from None


# kind -> (required keys, optional keys, checks). Checks are plain Python so that loading a
# file never waits for Great Expectations to import; GX objects are built at audit time.
KIND_SPECS: dict[str, tuple[set, set, tuple]] = {
    "column_values_not_null": ({"column"}, set(), (_column,)),
    "column_values_between": ({"column"}, {"min", "max"}, (_column, _bounds)),
    "column_values_unique": ({"column"}, set(), (_column,)),
    "column_values_in_set": ({"column", "values"}, set(), (_column, _values)),
    "column_values_match_regex": ({"column", "regex"}, set(), (_column, _regex)),
    "compound_columns_unique": ({"columns"}, set(), (_columns,)),
    "columns_match_set": ({"columns"}, set(), (_columns,)),
    "row_count_between": (set(), {"min", "max"}, (_bounds,)),
}
KINDS = tuple(KIND_SPECS)


def to_gx(e: Expectation):
    """The Great Expectations 1.x expectation for one of ours."""
    gx = import_gx()
    E, a = gx.expectations, e.args
    return {
        "column_values_not_null": lambda: E.ExpectColumnValuesToNotBeNull(column=a["column"]),
        "column_values_between": lambda: E.ExpectColumnValuesToBeBetween(
            column=a["column"], min_value=a.get("min"), max_value=a.get("max")),
        "column_values_unique": lambda: E.ExpectColumnValuesToBeUnique(column=a["column"]),
        "column_values_in_set": lambda: E.ExpectColumnValuesToBeInSet(column=a["column"], value_set=a["values"]),
        "column_values_match_regex": lambda: E.ExpectColumnValuesToMatchRegex(column=a["column"], regex=str(a["regex"])),
        "compound_columns_unique": lambda: E.ExpectCompoundColumnsToBeUnique(column_list=a["columns"]),
        "columns_match_set": lambda: E.ExpectTableColumnsToMatchSet(column_set=a["columns"], exact_match=True),
        "row_count_between": lambda: E.ExpectTableRowCountToBeBetween(min_value=a.get("min"), max_value=a.get("max")),
    }[e.kind]()


def load_expectations(path: str | Path) -> list[Expectation]:
    """Read and validate an expectations file; errors name the file, item and key."""
    path = Path(path)
    if not path.is_file():
        raise ExpectationsError(f"{path}: expectations file not found")
    raw = read_yaml(path, ExpectationsError)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ExpectationsError(f"{path}: expected a YAML list of {{expect: ..., ...}} items")
    out = []
    for i, item in enumerate(raw, start=1):
        where = f"{path}: item {i}"
        if not isinstance(item, dict) or "expect" not in item:
            raise ExpectationsError(f"{where}: expected a mapping with an 'expect' key")
        kind = item["expect"]
        if kind not in KIND_SPECS:
            raise ExpectationsError(f"{where}: unknown expectation '{kind}' (known: {', '.join(KINDS)})")
        required, optional, checks = KIND_SPECS[kind]
        args = {k: v for k, v in item.items() if k != "expect"}
        for key in args:
            if key not in required | optional:
                allowed = ", ".join(sorted(required | optional)) or "none"
                raise ExpectationsError(f"{where} ({kind}): unknown key '{key}' (allowed: {allowed})")
        for key in sorted(required - set(args)):
            raise ExpectationsError(f"{where} ({kind}): missing key '{key}'")
        try:
            for check in checks:
                check(args)
        except (TypeError, ValueError) as exc:
            raise ExpectationsError(f"{where} ({kind}): {str(exc).splitlines()[0]}") from None
        out.append(Expectation(kind=kind, args=args))
    return out


def preload() -> None:
    """Import Great Expectations in the background (it takes seconds) while Spark starts."""
    import pyspark.sql  # noqa: F401  -- GX imports pyspark too; two threads importing it at once deadlock

    if "great_expectations" in sys.modules or _preloading.is_set():
        return
    _preloading.set()
    threading.Thread(target=import_gx, daemon=True, name="healer-gx-import").start()


# GX imports these at import time only for expectations and renderers Healer never uses
# (KL divergence and KS tests, charts). Loaded lazily they cost nothing unless touched:
# about 2 s less of a cold heal's start on a 2-core machine.
_LAZY = frozenset({"scipy.stats", "altair"})


class _LazyFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _LAZY:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _LazyFinder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def import_gx():
    """``import great_expectations``, with its unused heavy dependencies loaded lazily."""
    finder = _LazyFinder()
    sys.meta_path.insert(0, finder)
    try:
        import great_expectations

        return great_expectations
    finally:
        sys.meta_path.remove(finder)


_preloading = threading.Event()
_gx_lock = threading.Lock()
_gx_state: dict[str, Any] = {}


def _batch_definition():
    """One ephemeral GX context and Spark dataframe asset per process, built on first use."""
    with _gx_lock:
        if "bd" not in _gx_state:
            gx = import_gx()
            from great_expectations.data_context.types.base import ProgressBarsConfig

            logging.getLogger("great_expectations").setLevel(logging.ERROR)
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            source = context.data_sources.add_spark(name="healer_spark")
            asset = source.add_dataframe_asset(name="healer_output")
            _gx_state["bd"] = asset.add_batch_definition_whole_dataframe("healer_whole")
        return _gx_state["bd"]


def run_expectations(df, expectations: list[Expectation], examples: int = 5) -> AuditResult:
    """Validate a Spark DataFrame against the expectations with Great Expectations."""
    if not expectations:
        return AuditResult(success=True, results=[])
    gx = import_gx()

    batch_definition = _batch_definition()  # the GX context must exist before a suite does
    suite = gx.ExpectationSuite(name="healer_audit")
    keys = []
    for e in expectations:
        gx_expectation = to_gx(e)
        keys.append(_config_key(gx_expectation.configuration))
        suite.add_expectation(gx_expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    validation = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": examples})
    results = []
    # GX does not return results in suite order: match each back by type and arguments.
    by_key = {}
    for res in validation.results:
        by_key.setdefault(_config_key(res.expectation_config), []).append(res)
    last: dict = {}
    for e, key in zip(expectations, keys):
        # GX evaluates a repeated line once: the repeat shares the first one's result.
        res = last[key] = by_key[key].pop(0) if by_key.get(key) else last[key]
        error = _raised(res.exception_info)
        raised = error is not None
        r = res.result or {}
        results.append(
            ExpectationResult(
                expectation=e.describe(),
                kind=e.kind,
                column=e.column,
                success=bool(res.success) and not raised,
                element_count=r.get("element_count"),
                unexpected_count=r.get("unexpected_count"),
                unexpected_percent=r.get("unexpected_percent"),
                # a secret column's failing values are masked where they are taken, before any report quotes them
                examples=mask_if_secret(e.column,
                                        [_plain(v) for v in (r.get("partial_unexpected_list") or [])][:examples]),
                observed=_plain(r.get("observed_value")),
                error=error,
            )
        )
    return AuditResult(success=all(r.success for r in results), results=results)


def _raised(info) -> str | None:
    """The first exception GX caught, at the top level or keyed by metric (GX 1.x does both)."""
    if not isinstance(info, dict):
        return None
    entries = [info] + [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "expectation raised").strip().splitlines()[0][:300]
    return None


def _config_key(cfg) -> tuple[str, str]:
    import json

    kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
    return cfg.type, json.dumps(kwargs, sort_keys=True, default=str)


def _plain(value):
    """JSON-friendly form of a value GX returns (dates, decimals, rows)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)  # NaN and infinities are not JSON; keep them visible as text
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
