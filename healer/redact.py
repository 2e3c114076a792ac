"""Untrusted text on its way to a model: secrets and personal data redacted, then fenced.

Data samples, logs and commit messages are written by people and systems we do not
control. Before any of it leaves the machine, values that look like credentials or
personal data are replaced by a tag naming what was removed, and the text is wrapped in
a fence the system prompt tells the model to treat as data, never as instructions.
"""

from __future__ import annotations

import json
import re

# (tag, pattern) in the order applied: specific credential shapes before generic ones.
PATTERNS: list[tuple[str, re.Pattern]] = [
    ("PRIVATE_KEY", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")),
    ("CONNECTION_STRING", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]+:[^\s@'\"]+@[^\s'\"]+")),
    ("AWS_KEY", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("API_KEY", re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|"
                           r"glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),
    ("SECRET", re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)\b(\s*[:=]\s*)"
                          r"(['\"]?)[^\s'\",;]{3,}\3")),
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("PHONE", re.compile(r"(?<![\w.])\+?\d{1,3}?[\s.-]?\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}(?![\w.])")),
    ("CARD", re.compile(r"\b(?:\d[ -]?){13,16}\b")),
]


def redact(text: str) -> str:
    """The text with every secret-looking or personal value replaced by ``[REDACTED:<KIND>]``."""
    if not text:
        return text
    for tag, pattern in PATTERNS:
        if tag == "SECRET":
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED:SECRET]", text)
        else:
            text = pattern.sub(f"[REDACTED:{tag}]", text)
    return text


def redact_value(value):
    """Redact inside nested rows (dicts, lists) of sample data."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def fence(source: str, text: str) -> str:
    """Untrusted text inside a fence the model is told never to obey.

    The closing tag is neutralized inside the text, so data cannot end the fence early.
    """
    body = redact(text).replace("</untrusted", "<\\/untrusted")
    return f'<untrusted-data source="{source}">\n{body}\n</untrusted-data>'


def fence_rows(source: str, rows: list[dict]) -> str:
    return fence(source, "\n".join(json.dumps(redact_value(r), default=str) for r in rows))
