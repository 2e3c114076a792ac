"""One error tree: every exception Healer raises to a caller is a HealerError, listed in errors.py."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

from healer import errors

ROOT = Path(__file__).resolve().parents[1]
# SystemExit and KeyboardInterrupt subclasses are meant to pass every ``except Exception``.
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, Exception)}


def _classes():
    for path in sorted((ROOT / "healer").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                yield path.relative_to(ROOT), node


def test_no_public_exception_outside_the_tree():
    outside = [f"{path}: {node.name}" for path, node in _classes()
               if not node.name.startswith("_") and node.name != "HealerError"
               and any(isinstance(b, ast.Name) and b.id in BUILTIN_EXCEPTIONS for b in node.bases)]
    assert not outside, "subclass a class of healer/errors.py instead: " + ", ".join(outside)


def test_the_docstring_tree_lists_every_class_of_errors_py():
    listed = set(re.findall(r"^    (?:[│ ]*[├└]── )?([A-Z]\w+) {2,}", errors.__doc__, re.M))
    defined = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.HealerError)}
    assert defined == listed


def test_old_import_paths_still_give_the_classes_of_the_tree():
    from healer.fixers.base import Declined
    from healer.forges.remote import ApiError
    from healer.runner.io import MissingInput

    assert (Declined, ApiError, MissingInput) == (errors.Declined, errors.ApiError, errors.MissingInput)
    assert issubclass(ApiError, errors.ForgeError) and issubclass(Declined, errors.HealerError)
    error = ApiError("GitHub: 502 from POST /pulls", status=502, detail="bad gateway")
    assert (str(error), error.status, error.detail) == ("GitHub: 502 from POST /pulls", 502, "bad gateway")


def test_a_probe_that_fails_says_so_in_the_log(spark, caplog):
    """Evidence that vanishes is logged, so a decline for want of it can be diagnosed."""
    from healer.evidence.probes import null_probe

    df = spark.sql("SELECT raise_error('the feed is gone') AS customer_id")
    with caplog.at_level("INFO", logger="healer.evidence.probes"):
        assert null_probe("orders", df, {"customer_id"}) == []
    [record] = [r for r in caplog.records if r.name == "healer.evidence.probes"]
    assert record.getMessage() == "null probe of orders not counted"
    assert "the feed is gone" in str(record.exc_info[1])
