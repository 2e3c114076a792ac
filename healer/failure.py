"""The Failure record, triage into a small taxonomy, and fingerprints.

Triage reads Spark's error condition and message parameters first and the message text
only as a fallback, so a reworded message does not change the class.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

from healer.expectations import ExpectationResult
from healer.ledger import RunRecord

# category -> Spark error conditions (prefixes) that mean it
CONDITIONS: dict[str, tuple[str, ...]] = {
    "unresolved_column": ("UNRESOLVED_COLUMN", "UNRESOLVED_FIELD", "FIELD_NOT_FOUND", "UNRESOLVED_MAP_KEY",
                          "AMBIGUOUS_REFERENCE", "INVALID_EXTRACT_FIELD"),
    "missing_table": ("TABLE_OR_VIEW_NOT_FOUND", "PATH_NOT_FOUND", "INPUT_NOT_FOUND"),
    "type_cast": ("CAST_INVALID_INPUT", "CANNOT_PARSE_TIMESTAMP", "CAST_OVERFLOW", "NUMERIC_VALUE_OUT_OF_RANGE",
                  "DATETIME_FIELD_OUT_OF_BOUNDS", "INVALID_FORMAT", "CANNOT_PARSE_DECIMAL", "ARITHMETIC_OVERFLOW"),
    "datatype_mismatch": ("DATATYPE_MISMATCH", "INCOMPATIBLE_DATA_FOR_TABLE", "INVALID_ARRAY_INDEX"),
    "divide_by_zero": ("DIVIDE_BY_ZERO", "INTERVAL_DIVIDED_BY_ZERO"),
    "unresolved_function": ("UNRESOLVED_ROUTINE", "WRONG_NUM_ARGS", "ROUTINE_NOT_FOUND"),
    "parse": ("PARSE_SYNTAX_ERROR", "PARSE_EMPTY_STATEMENT", "UNCLOSED_BRACKETED_COMMENT", "INVALID_IDENTIFIER"),
    "expectation": ("EXPECTATIONS_FAILED",),
    # issue 17: behaviour Spark 3+/4 changed or rejects (datetime patterns, ancient dates, ...)
    "legacy_behavior": ("INCONSISTENT_BEHAVIOR_CROSS_VERSION",),
    # an input that exists but does not read as declared (format, compression or layout changed)
    "unreadable_input": ("UNABLE_TO_INFER_SCHEMA", "FAILED_READ_FILE", "CANNOT_READ_FILE_FOOTER",
                         "CANNOT_READ_FILE", "FILE_NOT_EXIST", "MALFORMED_RECORD_IN_PARSING",
                         "DATA_SOURCE_NOT_FOUND", "INCOMPATIBLE_DATA_SOURCE"),
}

# Read errors whose text (Java exceptions without an error condition) says the files are not
# what the reader expects: the message fallback for unreadable inputs.
UNREADABLE = re.compile(
    r"is not a Parquet file|expected magic number|Could not read footer|Not an Avro data file|"
    r"Malformed ORC file|ORC file .* is corrupt|Unable to infer schema|not in gzip format|"
    r"Invalid ORC postscript|Corrupt(ed)? input|Failed to read file",
    re.IGNORECASE,
)

# Infrastructure trouble that a code change cannot fix: left to Airflow's retries.
TRANSIENT = re.compile(
    r"ExecutorLostFailure|Lost executor|OutOfMemoryError|SparkOutOfMemoryError|FetchFailed|"
    r"Connection refused|Connection reset|ConnectException|SocketTimeout|timed out|TimeoutException|"
    r"Py4JNetworkError|UnknownHostException|Broken pipe|No space left on device|"
    r"Container killed|SparkContext was shut down|too many open files|ServiceUnavailable|Throttling|SlowDown",
    re.IGNORECASE,
)

CATEGORY_WORDS = {
    "unresolved_column": "a column the job reads no longer resolves",
    "missing_table": "an input table or path is missing",
    "type_cast": "values no longer cast to the type the job expects",
    "datatype_mismatch": "an input column has a type the job cannot use",
    "divide_by_zero": "a division by zero",
    "unresolved_function": "the job calls a function Spark does not have, or with the wrong arguments",
    "parse": "the job's SQL does not parse",
    "expectation": "the output failed its expectations",
    "transient": "transient infrastructure trouble",
    "config": "the pipeline's configuration is invalid",
    "legacy_behavior": "the job relies on behaviour this Spark version changed or rejects (e.g. a datetime pattern)",
    "unreadable_input": "an input exists but no longer reads as healer.yml declares it",
    "unknown": "an unclassified error",
}


@dataclass
class Failure:
    """One failed pipeline run, normalized whatever reported it."""

    pipeline: str
    repo: str
    stage: str
    error_class: str
    message: str
    commit: str | None = None
    dirty: bool = False
    run_id: int | None = None
    params: dict = field(default_factory=dict)
    traceback: str | None = None
    failed_expectations: list[ExpectationResult] = field(default_factory=list)
    context: dict = field(default_factory=dict)  # airflow ids, try number, log url
    category: str = "unknown"
    key_objects: list[str] = field(default_factory=list)

    @property
    def transient(self) -> bool:
        return self.category == "transient"

    @property
    def fingerprint(self) -> str:
        """Stable id of the cause: pipeline + category + key objects."""
        text = "|".join([self.pipeline, self.category, *sorted(self.key_objects)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def short_fingerprint(self) -> str:
        return self.fingerprint[:8]

    def describe(self) -> str:
        return CATEGORY_WORDS.get(self.category, self.category)

    def retries_left(self) -> bool:
        """True when Airflow will try this task again (so the heal waits for the last try)."""
        return will_retry(self.context.get("try_number"), self.context.get("max_tries"))

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(failed_expectations=[e.to_json() for e in self.failed_expectations],  # the stored shape
                    fingerprint=self.fingerprint, transient=self.transient)
        return data


def will_retry(try_number, max_tries) -> bool:
    """The one rule for "will Airflow try this task again", on its numbers alone: try ``try_number``
    (counted from 1) of a task with ``max_tries`` (its retries) is followed by another while
    ``try_number <= max_tries``. With either number unknown no retry is known to follow, so a heal
    does not wait. The failure callback and listener read the numbers off the task instance
    (healer.airflow.runs.will_retry); a heal reads them from the run's context (Failure.retries_left)."""
    return try_number is not None and max_tries is not None and int(try_number) <= int(max_tries)


def stop_before_work(failure: Failure) -> tuple[str, str] | None:
    """Triage's say on the failure alone: (status, reason) when the heal stops before any work, else None.

    ``skipped``: infrastructure trouble left to retries, or a try Airflow will retry (the heal
    waits for the last try). ``declined``: an invalid configuration, which Healer does not repair.
    What needs the ledger (an open PR for the same cause, the lease) is healer.heal's.
    """
    if failure.transient:
        return "skipped", f"transient, left to retries: {failure.error_class}"
    if failure.retries_left():
        return "skipped", (f"try {failure.context.get('try_number')} of {int(failure.context['max_tries']) + 1}: "
                           "Airflow will retry; healing waits for the last try")
    if failure.category == "config":
        return "declined", ("the pipeline's configuration is invalid, which Healer does not repair: "
                            f"{failure.message.splitlines()[0] if failure.message else ''}")
    return None


def from_run(run: RunRecord) -> Failure:
    """The Failure of a recorded failed run, classified."""
    failure = Failure(
        pipeline=run.pipeline,
        repo=run.repo,
        stage=run.stage or "job",
        error_class=run.error_class or "unknown",
        message=run.error_message or "",
        commit=run.commit,
        dirty=bool(run.dirty),
        run_id=run.id,
        params=dict(run.error_params or {}),
        traceback=run.traceback,
        failed_expectations=[ExpectationResult.from_json(e) for e in run.failed_expectations or []],
        context=dict(run.context or {}),
    )
    return classify(failure)


def from_text(pipeline: str, repo: str, error_text: str, stage: str = "job", **context) -> Failure:
    """A Failure from an error message alone (a log line, a pasted traceback)."""
    match = re.search(r"\[([A-Z][A-Z0-9_]+(?:\.[A-Z0-9_]+)*)\]", error_text)
    failure = Failure(pipeline=pipeline, repo=repo, stage=stage, error_class=match.group(1) if match else "unknown",
                      message=error_text, context=context)
    return classify(failure)


def classify(failure: Failure) -> Failure:
    """Set category and key objects from the error condition, parameters and stage."""
    condition = failure.error_class or ""
    text = f"{condition} {failure.message}"
    if failure.stage == "config":
        failure.category = "config"
    elif TRANSIENT.search(text) and not _condition_category(condition):
        failure.category = "transient"
    else:
        failure.category = _condition_category(condition) or _message_category(failure.message) or "unknown"
        if failure.stage == "input" and failure.category not in ("missing_table", "unreadable_input") and (
                failure.category == "unknown" or UNREADABLE.search(text)):
            # at the input stage Spark only opens the files: an unclassified error there means they
            # are not what the manifest declares
            failure.category = "unreadable_input"
        elif failure.category == "unknown" and UNREADABLE.search(text):
            failure.category = "unreadable_input"
    failure.key_objects = _key_objects(failure)
    return failure


def _condition_category(condition: str) -> str | None:
    for category, prefixes in CONDITIONS.items():
        if any(condition.startswith(p) for p in prefixes):
            return category
    return None


def _message_category(message: str) -> str | None:
    match = re.search(r"\[([A-Z][A-Z0-9_]+(?:\.[A-Z0-9_]+)*)\]", message or "")
    return _condition_category(match.group(1)) if match else None


def _input_in(message: str) -> str | None:
    match = re.search(r"input '([^']+)'", message or "")
    return match.group(1) if match else None


def _unquote(name: str) -> str:
    return name.replace("`", "").strip()


def _key_objects(failure: Failure) -> list[str]:
    p = failure.params
    if failure.category == "unresolved_column":
        return [_unquote(p.get("objectName", p.get("fieldName", "")))] if p else []
    if failure.category == "missing_table":
        return [p.get("input") or _unquote(p.get("relationName", "")) or p.get("path", "")]
    if failure.category == "expectation":
        return sorted({f"{e.kind}:{e.column or ''}" for e in failure.failed_expectations})
    if failure.category in ("type_cast", "datatype_mismatch"):
        keys = [p.get(k) for k in ("expression", "sourceType", "targetType", "func", "sqlExpr") if p.get(k)]
        return [k if len(k) < 80 else k[:80] for k in keys]
    if failure.category == "unresolved_function":
        name = p.get("routineName") or p.get("functionName") or ""
        return [_unquote(name).lower()] if name else [failure.error_class]
    if failure.category == "transient":
        return []
    if failure.category == "unreadable_input":
        return [p.get("input") or _input_in(failure.message) or failure.error_class]
    if failure.category == "legacy_behavior":
        return [failure.error_class] + ([p["pattern"].strip("'")] if p.get("pattern") else [])
    return [failure.error_class]
