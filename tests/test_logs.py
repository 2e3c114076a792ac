"""healer.logs: the core logs through module loggers; `healer heal` and `healer demo` show the progress."""

from __future__ import annotations

import io
import logging

from healer.logs import info_lines, progress


def test_progress_shows_the_heals_lines_indented_and_leaves_the_loggers_as_they_were(capsys):
    heal_log, quiet = logging.getLogger("healer.heal"), logging.getLogger("healer.sandbox.run")
    before = heal_log.level
    shown = io.StringIO()
    with progress(shown, indent="  "):
        info_lines(heal_log, "evidence ...\nschema drift:\n  orders.unit_price dropped")
        logging.getLogger("healer.fixers.llm").info("LLM round %d (%s)", 1, "m")
        quiet.info("not progress")  # another module's INFO stays as quiet as without a handler
        quiet.warning("a warning")  # shown on stderr, bare, as Python's last-resort handler shows it
    heal_log.info("after the block")
    assert shown.getvalue() == ("  evidence ...\n  schema drift:\n    orders.unit_price dropped\n"
                                "  LLM round 1 (m)\n")
    assert capsys.readouterr().err == "a warning\n"
    assert heal_log.level == before and not logging.getLogger("healer").handlers


def test_info_lines_makes_one_record_a_line(caplog):
    caplog.set_level(logging.INFO, logger="healer.heal")
    info_lines(logging.getLogger("healer.heal"), "a\nb")
    assert [r.getMessage() for r in caplog.records] == ["a", "b"]
