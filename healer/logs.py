"""Where a heal's progress lines go.

The core (``heal.py``, ``storm.py``, ``fixers/llm.py``) says each stage, candidate and model
round at INFO on its module logger and attaches no handler: a library does not choose where
its logs go. A caller that shows the progress attaches one handler for the length of the heal:

    with logs.progress():                 # healer heal: the lines on stderr
        heal(repo, pipeline)

The Airflow task log needs nothing: Airflow's handlers take every logger's INFO records.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

# the loggers whose INFO records are a heal's progress (the others' INFO stays as quiet as before)
PROGRESS = ("healer.heal", "healer.storm", "healer.fixers.llm")


def info_lines(logger: logging.Logger, text: str) -> None:
    """Log ``text`` one record a line: the Airflow task log stamps each record, so a multi-line
    evidence report stays a column of stamped lines there (and reads the same on a terminal)."""
    for line in str(text).splitlines() or [""]:
        logger.info("%s", line)


class _Shown(logging.Handler):
    """The heal's progress lines on ``stream``, each line after ``indent``; and the warnings of any
    ``healer`` logger bare on stderr, as Python's last-resort handler showed them before: a handler
    on the ``healer`` logger takes that one's place, so it must show them too."""

    def __init__(self, stream: TextIO | None, indent: str):
        super().__init__()
        self.stream, self.indent = stream, indent
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno >= logging.WARNING:
                out, text = sys.stderr, self.format(record)  # stderr as it is now, like the last-resort handler
            elif record.levelno >= logging.INFO and record.name in PROGRESS:
                out, text = self.stream or sys.stderr, self.format(record)
                text = self.indent + text.replace("\n", "\n" + self.indent) if self.indent else text
            else:  # other modules' INFO and DEBUG stay as quiet as before
                return
            out.write(text + "\n")
            out.flush()
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise into the heal
            self.handleError(record)


@contextmanager
def progress(stream: TextIO | None = None, indent: str = "") -> Iterator[logging.Handler]:
    """Show the heal's progress lines on ``stream`` (stderr by default), each line after ``indent``,
    while the block runs; the loggers are left as they were afterwards."""
    handler = _Shown(stream, indent)
    loggers = [logging.getLogger(name) for name in PROGRESS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        if not lg.isEnabledFor(logging.INFO):
            lg.setLevel(logging.INFO)
    top = logging.getLogger("healer")
    top.addHandler(handler)
    try:
        yield handler
    finally:
        top.removeHandler(handler)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
