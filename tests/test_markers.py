"""Marker discipline: a run that deselects ``spark`` (``make test-fast``) starts no JVM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

CASES = '''
def test_starts_spark_without_saying_so():
    from pyspark.sql import SparkSession

    SparkSession.builder.master("local[1]").getOrCreate()


def test_uses_the_spark_fixture(spark):
    raise AssertionError("deselected: the fixture marks it spark")


def test_needs_no_spark():
    assert True
'''


def test_a_run_without_spark_deselects_its_users_and_refuses_any_other_jvm(tmp_path):
    (tmp_path / "test_cases.py").write_text(CASES)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "-m", "not slow and not spark", "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(TESTS)})
    out = done.stdout + done.stderr
    assert "1 failed, 1 passed, 1 deselected" in out, out[-3000:]
    assert "test_starts_spark_without_saying_so" in out
    assert "this run deselects spark tests, but this test started Spark: mark it @pytest.mark.spark" in out
