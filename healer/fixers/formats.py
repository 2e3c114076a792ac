"""Detecting how values that used to be typed are now written as strings."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# (Spark pattern, strptime pattern)
DATE_PATTERNS = [
    ("yyyy-MM-dd", "%Y-%m-%d"), ("dd/MM/yyyy", "%d/%m/%Y"), ("MM/dd/yyyy", "%m/%d/%Y"),
    ("dd-MM-yyyy", "%d-%m-%Y"), ("MM-dd-yyyy", "%m-%d-%Y"), ("yyyy/MM/dd", "%Y/%m/%d"),
    ("dd.MM.yyyy", "%d.%m.%Y"), ("yyyyMMdd", "%Y%m%d"),
]
TIME_SUFFIXES = [(" HH:mm:ss", " %H:%M:%S"), ("'T'HH:mm:ss", "T%H:%M:%S"), (" HH:mm", " %H:%M"),
                 (" HH:mm:ss.S", " %H:%M:%S.%f"), ("'T'HH:mm:ss.S", "T%H:%M:%S.%f")]
_FRACTION = re.compile(r"\.(\d+)$")


@dataclass(frozen=True)
class Detected:
    spark_pattern: str
    kind: str  # date | timestamp | number
    ambiguous_with: tuple[str, ...] = ()
    parsed_min: object = None
    parsed_max: object = None


def detect_temporal(values: list, target: str, old_min=None, old_max=None) -> Detected | None:
    """The Spark pattern that parses every value; ties broken by the last good value range."""
    values = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not values:
        return None
    patterns = DATE_PATTERNS if target == "date" else \
        [(d + ts, dp + tp) for d, dp in DATE_PATTERNS for ts, tp in TIME_SUFFIXES] + DATE_PATTERNS
    fits = []
    digits = {len(m.group(1)) for v in values if (m := _FRACTION.search(v))}
    for spark_pattern, py_pattern in patterns:
        if spark_pattern.endswith(".S"):
            if len(digits) != 1:  # Spark needs the exact number of fraction digits
                continue
            spark_pattern = spark_pattern[:-1] + "S" * next(iter(digits))
        parsed = _parse_all(values, py_pattern)
        if parsed is not None:
            fits.append((spark_pattern, min(parsed), max(parsed)))
    if not fits:
        return None
    if len(fits) > 1 and old_min is not None and old_max is not None:
        lo, hi = _as_datetime(old_min), _as_datetime(old_max)
        inside = [f for f in fits if lo is not None and hi is not None and f[1] >= lo - dt.timedelta(days=3650)
                  and f[2] <= hi + dt.timedelta(days=3650)]
        # prefer the reading whose range best overlaps the last good range
        if inside:
            inside.sort(key=lambda f: abs((f[1] - lo).total_seconds()) + abs((f[2] - hi).total_seconds()))
            fits = inside
    best = fits[0]
    return Detected(spark_pattern=best[0], kind=target, ambiguous_with=tuple(f[0] for f in fits[1:]),
                    parsed_min=best[1], parsed_max=best[2])


def _parse_all(values: list[str], py_pattern: str) -> list[dt.datetime] | None:
    out = []
    for v in values:
        try:
            out.append(dt.datetime.strptime(v, py_pattern))
        except ValueError:
            return None
    return out


def _as_datetime(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def plain_numbers(values: list) -> bool:
    """True when every value is a number Spark's CAST reads as is."""
    vals = [str(v).strip() for v in values if v is not None]
    return bool(vals) and all(_PLAIN_NUMBER.match(v) for v in vals)
