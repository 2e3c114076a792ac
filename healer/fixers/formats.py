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


# -- numbers written as formatted text: "1,234.50", "$ 1 234,50", "1.234,50 €" --------------------

_CURRENCY = "$€£¥"


@dataclass(frozen=True)
class NumberFormat:
    """How formatted numbers are written: which characters to strip, which is the decimal mark."""

    decimal: str  # "." or ","
    strip: str  # characters removed before the cast (thousands separators, currency, spaces)
    parsed_min: float | None = None
    parsed_max: float | None = None
    ambiguous_with: str | None = None  # the other reading, when both parse

    def regex_class(self) -> str:
        """A regex character class of the characters to strip, e.g. ``[,$]``."""
        return "[" + self.strip + "]"  # only separators and currency signs: nothing to escape


def _number_reading(values: list[str], decimal: str) -> tuple[str, list[float]] | None:
    thousands = "," if decimal == "." else "."
    group = re.compile(r"^[+-]?\d{1,3}(" + re.escape(thousands) + r"\d{3})+(" + re.escape(decimal) + r"\d+)?$")
    plain = re.compile(r"^[+-]?\d+(" + re.escape(decimal) + r"\d+)?$")
    strip, out = set(), []
    for raw in values:
        v = raw.strip()
        for c in _CURRENCY:
            if c in v:
                strip.add(c)
                v = v.replace(c, "")
                if v != v.strip():  # "€ 2.00": the space goes too
                    strip.add(" ")
                    v = v.strip()
        for space in (" ", "\u00a0", "'"):
            if space in v and re.fullmatch(r"[+-]?\d{1,3}(" + re.escape(space) + r"\d{3})+([.,]\d+)?", v):
                strip.add(space)
                v = v.replace(space, "")
        if group.match(v):
            strip.add(thousands)
            v = v.replace(thousands, "")
        elif not plain.match(v):
            return None
        out.append(float(v.replace(decimal, ".")))
    return "".join(sorted(strip)), out


def detect_number(values: list, old_min=None, old_max=None) -> NumberFormat | None:
    """The reading of formatted numbers that parses every value; ties broken by the last
    good value range. None when values are plain (a CAST reads them) or do not parse."""
    vals = [str(v) for v in values if v is not None and str(v).strip()]
    if not vals or plain_numbers(vals):
        return None
    readings = {}
    for decimal in (".", ","):
        r = _number_reading(vals, decimal)
        if r is not None:
            readings[decimal] = r
    if not readings:
        return None
    if len(readings) == 2 and old_min is not None and old_max is not None:
        def distance(d):
            nums = readings[d][1]
            return abs(min(nums) - float(old_min)) + abs(max(nums) - float(old_max))
        order = sorted(readings, key=distance)
        best, other = order[0], order[1]
        if distance(best) < distance(other):
            strip, nums = readings[best]
            return NumberFormat(best, strip, min(nums), max(nums))
    best = "." if "." in readings else ","
    strip, nums = readings[best]
    other = next((d for d in readings if d != best), None)
    return NumberFormat(best, strip, min(nums), max(nums), ambiguous_with=other)


# -- epoch numbers where a timestamp used to be ----------------------------------------------------

EPOCH_UNITS = {"seconds": 1, "millis": 1_000, "micros": 1_000_000}


@dataclass(frozen=True)
class Epoch:
    unit: str  # seconds | millis | micros
    parsed_min: dt.datetime
    parsed_max: dt.datetime


def detect_epoch(values: list, old_min=None, old_max=None) -> Epoch | None:
    """The epoch unit under which the numbers fall in a plausible range (1990-2100), nearest
    the last good range; None when no unit fits or two fit equally well."""
    nums = []
    for v in values:
        if v is None:
            continue
        try:
            nums.append(float(v))
        except (TypeError, ValueError):
            return None
    if not nums:
        return None
    lo_bound, hi_bound = dt.datetime(1990, 1, 1), dt.datetime(2100, 1, 1)
    fits = []
    for unit, per_second in EPOCH_UNITS.items():
        try:
            lo = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=min(nums) / per_second)
            hi = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=max(nums) / per_second)
        except (OverflowError, ValueError):
            continue
        if lo >= lo_bound and hi <= hi_bound:
            fits.append(Epoch(unit, lo, hi))
    old_lo, old_hi = _as_datetime(old_min), _as_datetime(old_max)
    if len(fits) != 1:
        if not fits or old_lo is None or old_hi is None:
            return None
        fits.sort(key=lambda e: abs((e.parsed_min - old_lo).total_seconds()) + abs((e.parsed_max - old_hi).total_seconds()))
    best = fits[0]
    if old_lo is not None and old_hi is not None:
        slack = dt.timedelta(days=3650)
        if best.parsed_max < old_lo - slack or best.parsed_min > old_hi + slack:
            return None  # a plausible date, but nowhere near what the column held
    return best
